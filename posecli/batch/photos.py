"""Photos given by name, as ``posecli image`` runs them: one result (a file, a file per photo,
or stdout) and annotated images, checked as a whole when made; :func:`run_photos` runs them.

    job = PhotoJob(("a.jpg", "b.jpg"), out="poses/", render="drawn/")
    done = run_photos(job)           # photos done; a photo that fails is reported and skipped
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError, OutputError, PoseError
from ..formats.layouts import DEFAULT_LAYOUT
from ..formats.records import result_suffix
from ..formats.render import Renderer
from ..formats.writers import ResultWriter
from ..inference.options import EstimatorOptions
from ..io.atomic import AtomicFile, check_writable
from ..io.images import read_alpha
from ..io.outputs import check_distinct, unique_names

ALPHA_EXTENSIONS = (".png", ".webp", ".tif", ".tiff")


def names_dir(value: str | Path | None) -> bool:
    """True when an output names a directory: an existing one, or a string ending in a separator."""
    return value is not None and (str(value).endswith(("/", "\\")) or Path(value).is_dir())


@dataclass(frozen=True)
class PhotoJob:
    """``photos``: image files. ``out``: a result file, a directory (an existing one or a name
    ending in a separator: one file per photo; ``fmt='openpose'`` with several photos too)
    or None (stdout). ``render``: an annotated image, or a directory of them (several
    photos); ``keep_alpha``: they keep the photo's transparency (PNG, WebP, TIFF).
    ``maps_dir``: a folder for each photo's maps. ``layout``: the keypoint order of
    ``fmt='openpose'`` (:mod:`posecli.formats.layouts`); ``angles``: ``fmt='csv'`` also has
    each person's joint and segment angles (:mod:`posecli.angles`). ``targets`` is each photo's
    ``(result, annotated image)`` in the directories (None where not one file per photo).
    """

    photos: tuple[Path, ...]
    estimator: EstimatorOptions = field(default_factory=EstimatorOptions)
    fmt: str = "posecli"
    out: str | Path | None = None
    render: str | Path | None = None
    keep_alpha: bool = False
    renderer: Renderer | None = None
    maps_dir: Path | None = None
    layout: str = DEFAULT_LAYOUT
    angles: bool = False
    targets: tuple = field(init=False)

    def __post_init__(self) -> None:
        photos = tuple(Path(p) for p in self.photos)
        object.__setattr__(self, "photos", photos)
        if self.maps_dir is not None and not self.estimator.keep_maps:  # the maps are kept to be written
            object.__setattr__(self, "estimator", replace(self.estimator, keep_maps=True))
        render = None if self.render is None else Path(self.render)
        _one_file_per_photo(photos, self.render, "render", "annotated image")
        if self.fmt == "openpose":
            _one_file_per_photo(photos, self.out, "out", "OpenPose file")
        if self.keep_alpha and render is None:
            raise ConfigError("keep_alpha=True is about the annotated image: add render", param=("keep_alpha", "render"))
        if self.keep_alpha and not self.render_is_dir and render.suffix.lower() not in ALPHA_EXTENSIONS:
            raise ConfigError(f"keep_alpha=True needs an image format with transparency "
                              f"({', '.join(ALPHA_EXTENSIONS)}), not '{render.suffix or render.name}'")
        if self.fmt == "openpose" and self.out is None and len(photos) > 1:
            raise ConfigError("fmt='openpose' writes one file per photo: give out=DIRECTORY", param="out")
        if render is not None and not self.render_is_dir and not cv2.haveImageWriter(f"x{render.suffix or '.jpg'}"):
            raise ConfigError(f"cannot write an image as '{render.suffix or 'no extension'}' (use .jpg or .png)",
                              path=render, param="render")
        object.__setattr__(self, "targets", self._targets())
        outputs = [("out", Path(self.out))] if self.out is not None and not self.out_is_dir else []
        outputs += [("render", render)] if render is not None and not self.render_is_dir else []
        outputs += [(what, path) for pair in self.targets for what, path in zip(("out", "render"), pair) if path]
        check_distinct(photos, outputs)

    @property
    def out_is_dir(self) -> bool:
        return self.out is not None and (names_dir(self.out) or (self.fmt == "openpose" and len(self.photos) > 1))

    @property
    def render_is_dir(self) -> bool:
        return self.render is not None and (names_dir(self.render) or len(self.photos) > 1)

    def _targets(self) -> tuple:
        """Each photo's result file and annotated image in the output directories; names made
        unique by :func:`posecli.io.outputs.unique_names`."""
        out_dir = Path(self.out) if self.out_is_dir else None
        render_dir = Path(self.render) if self.render_is_dir else None
        ext = ".png" if self.keep_alpha else ".jpg"
        targets = []
        for name in unique_names(list(self.photos)):
            result = None if out_dir is None else out_dir / (f"{name}_keypoints.json" if self.fmt == "openpose"
                                                             else f"{name}{result_suffix(self.fmt)}")
            targets.append((result, None if render_dir is None else render_dir / f"{name}_rendered{ext}"))
        return tuple(targets)

    def check_outputs(self) -> None:
        """:class:`OutputError` now, before any work, unless every output can be written."""
        for path, is_dir in ((self.out, self.out_is_dir), (self.render, self.render_is_dir), (self.maps_dir, True)):
            if path is not None:
                check_writable(Path(path), is_dir)


def _one_file_per_photo(photos: tuple, value, param: str, what: str) -> None:
    """Several photos make one ``what`` each: an output that looks like a file name (has an
    extension, is not a folder) is a :class:`ConfigError`, not a folder named like a file."""
    if value is None or len(photos) < 2 or names_dir(value) or not Path(value).suffix:
        return
    folder = Path(value).with_suffix("").name or "out"
    raise ConfigError(f"{param}={str(value)!r} names one file, but {len(photos)} photos make one {what} each: "
                      f"give a folder ({param}='{folder}/')", param=param)


class PhotoReport:
    """What :func:`run_photos` tells its caller; every method may be left as it is.
    ``check()`` before each photo may raise to stop (the finished photos are kept);
    ``progress()`` after each."""

    def started(self, estimator) -> None:
        pass

    def done(self, photo: Path, people: int, seconds: float) -> None:
        pass

    def failed(self, photo: Path, error: PoseError) -> None:
        pass

    def check(self) -> None:
        pass

    def progress(self) -> None:
        pass


def run_photos(job: PhotoJob, report: PhotoReport | None = None) -> int:
    """Run ``job`` and return the number of photos done. A photo that fails (unreadable,
    not an image) is reported and skipped; an :class:`OutputError` stops the run. However
    it ends, the one result file is closed: complete, or after an interrupt valid and marked
    incomplete with the photos done, or (after an error, or nothing done) not written."""
    report = report or PhotoReport()
    job.check_outputs()
    est = job.estimator.build()
    maps = None
    if job.maps_dir is not None:
        from ..formats.maps import MapsWriter

        maps = MapsWriter(job.maps_dir, est.skeleton)
    report.started(est)
    model = est.model.info.name
    writer = None if job.out_is_dir else ResultWriter(job.fmt, job.out, model=model, skeleton=est.skeleton,
                                                      layout=job.layout, angles=job.angles)
    renderer = job.renderer or Renderer()
    done = 0
    try:
        for photo, (result, rendered), name in zip(job.photos, job.targets, unique_names(list(job.photos))):
            report.check()
            try:
                t0 = time.perf_counter()
                # without render only the network sees the pixels: huge JPEGs decode reduced
                frame, image = est.estimate_file(photo, keep_image=job.render is not None)
                elapsed = time.perf_counter() - t0
                if maps is not None:
                    maps.add(frame, name)  # distinct as the result names are
                if result is not None:
                    _write_one(ResultWriter(job.fmt, result, model=model, skeleton=est.skeleton, layout=job.layout,
                                            angles=job.angles), frame)
                else:
                    writer.add(frame)
                if job.render is not None:
                    if job.keep_alpha:
                        alpha = read_alpha(photo)
                        image = image if alpha is None else np.dstack([image, alpha])
                    write_image(rendered or Path(job.render), renderer(image, frame.people))
                done += 1
                report.done(photo, len(frame.people), elapsed)
            except OutputError:
                raise  # disk full, output gone: stop rather than fail every photo after it
            except PoseError as exc:
                report.failed(photo, exc)
            report.progress()
    except BaseException as exc:
        if writer is not None:
            _close_unfinished(writer, keep=isinstance(exc, KeyboardInterrupt))
        raise
    if writer is not None:
        if writer.count:
            writer.close()
        else:
            writer.discard()  # nothing succeeded: leave no output at all
    return done


def _write_one(writer: ResultWriter, frame) -> None:
    """One photo's own result file, whole or not at all."""
    try:
        writer.add(frame)
        writer.close()
    except BaseException:
        writer.discard()  # no temporary file left behind
        raise


def _close_unfinished(writer: ResultWriter, keep: bool) -> None:
    """After an interrupt (``keep``): the finished photos stay, in valid JSON marked
    incomplete; after an error: an existing output is replaced only by a complete one."""
    try:
        if keep and writer.count:
            writer.close(complete=False, keep_partial=True)
        else:
            writer.discard()
    except PoseError:
        writer.discard()


def write_image(path: Path, image) -> None:
    """Encode by the file's extension and write atomically."""
    ext = path.suffix.lower() or ".jpg"
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise OutputError(f"cannot encode an image as '{ext}'", path=path)
    with AtomicFile(path, "wb") as f:
        f.write(buf.tobytes())
