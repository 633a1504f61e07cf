"""One video job as ``posecli video`` runs it: a SOURCE, the estimator and video settings, and
where the results go, checked as a whole when made; :func:`run_video` runs it.

    job = VideoJob("clip.mp4", out="poses/", options=VideoOptions(smooth=True))
    run = run_video(job)            # VideoRun: frames_done, stopped_early, render_path ...
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ConfigError, shown_path
from ..formats.records import result_suffix
from ..inference.options import EstimatorOptions
from ..io.atomic import check_writable
from ..io.outputs import check_distinct
from ..io.source_spec import SourceSpec, parse_source
from .run import VideoOptions, VideoRun


@dataclass(frozen=True)
class VideoJob:
    """``source``: any SOURCE (:func:`~posecli.io.source_spec.parse_source`). ``out``: a JSON
    file, a folder (an existing one or a name ending in a separator: the result is
    ``<source stem>.json`` in it; ``fmt='openpose'``: one file per frame) or None (stdout).
    ``render``: the annotated video; ``maps_dir``: a folder for each frame's maps (the
    estimator then keeps them); ``show``: a window with the results; ``trc_dir``: a folder for
    a pixel TRC per tracked person (:mod:`posecli.formats.trc`, Sports2D's layout).
    ``out_path`` and ``spec`` are what the job resolved them to; ``estimator.mode`` None
    becomes ``fastest`` for cameras and streams (without ``maps_dir``), ``fast`` otherwise.
    """

    source: str
    estimator: EstimatorOptions = field(default_factory=EstimatorOptions)
    options: VideoOptions = field(default_factory=VideoOptions)
    out: str | Path | None = None
    render: Path | None = None
    maps_dir: Path | None = None
    show: bool = False
    trc_dir: Path | None = None
    spec: SourceSpec = field(init=False)
    out_path: Path | None = field(init=False)
    out_is_dir: bool = field(init=False)

    def __post_init__(self) -> None:
        spec = parse_source(self.source)
        object.__setattr__(self, "spec", spec)
        self.options.check_source(spec)
        # A string first: a trailing slash ("poses/") asks for a folder, and Path drops it.
        text = None if self.out is None else str(self.out)
        out_is_dir = text is not None and (text.endswith(("/", "\\")) or Path(text).is_dir())
        out = None if text is None else Path(text)
        if self.options.fmt == "openpose":
            _check_frames_folder(out)
        elif out_is_dir:
            out = out / (spec.stem + result_suffix(self.options.fmt))
        object.__setattr__(self, "out_path", out)
        object.__setattr__(self, "out_is_dir", out_is_dir)
        if self.trc_dir is not None and not self.options.track:
            raise ConfigError("trc_dir writes a file per tracked person: drop track=False", param="trc_dir")
        check_distinct([Path(self.source)] if spec.kind == "file" else [],
                       [("out", out), ("render", self.render), ("trc_dir", self.trc_dir)])
        object.__setattr__(self, "estimator", _video_mode(self.estimator, spec, self.maps_dir))
        if self.maps_dir is not None and not self.estimator.keep_maps:  # the maps are kept to be written
            object.__setattr__(self, "estimator", replace(self.estimator, keep_maps=True))

    def check_outputs(self) -> None:
        """:class:`~posecli.errors.OutputError` now, before any work, unless the results can be written."""
        if self.out_path is not None and self.out_is_dir and self.options.fmt != "openpose":
            check_writable(self.out_path.parent, is_dir=True)  # "out=poses/": the folder is made
        if self.out_path is not None:
            check_writable(self.out_path, is_dir=self.options.fmt == "openpose")
        if self.trc_dir is not None:
            check_writable(Path(self.trc_dir), is_dir=True)


def _video_mode(estimator: EstimatorOptions, spec: SourceSpec, maps_dir) -> EstimatorOptions:
    """The estimator settings with the video's mode: ``mode=None`` is ``fastest`` for cameras and
    streams (fewer network runs rather than dropped frames) unless maps are written, else
    ``fast``; :class:`ConfigError` for ``fastest`` with maps (there are none on carried frames)."""
    if estimator.mode is None:
        return replace(estimator, mode="fastest" if spec.live and maps_dir is None else "fast")
    if estimator.mode == "fastest" and maps_dir is not None:
        raise ConfigError("maps_dir writes every frame's maps, and mode='fastest' runs the network on a few "
                          "frames only: use mode='fast'", param=("mode", "maps_dir"))
    return estimator


def _check_frames_folder(out: Path | None) -> None:
    """:class:`ConfigError` unless ``out`` can be the folder of per-frame files (``openpose``)."""
    what = "fmt='openpose' writes one file per frame: give out a folder"
    if out is None:
        raise ConfigError(what, param="out")
    if out.suffix.lower() == ".json":
        raise ConfigError(f"{what}, not a .json", param="out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"fmt='openpose' writes one file per frame: {shown_path(out)} is a file, give out a folder",
                          param="out")


class VideoReport:
    """What :func:`run_video` tells its caller; every method may be left as it is.

    ``started(estimator, run)`` before the first frame; ``progress(n)`` after each ``n``
    frames (it may raise to stop the run: the results so far are kept); ``note(line)`` at
    each reconnection of a live source.
    """

    def started(self, estimator, run: VideoRun) -> None:
        pass

    def progress(self, frames: int) -> None:
        pass

    def note(self, line: str) -> None:
        pass


def run_video(job: VideoJob, report: VideoReport | None = None) -> VideoRun:
    """Run ``job``: outputs checked, window opened (``show``), estimator loaded, every frame
    processed. However it ends, the window is closed and the outputs too (the JSON valid,
    marked ``"complete": false`` when the run did not finish)."""
    report = report or VideoReport()
    job.check_outputs()
    window = None
    if job.show:
        from .window import Window

        window = Window(title=f"posecli: {job.spec.text}")  # a URL without its password
    run = None
    try:
        estimator = job.estimator.build()
        run = VideoRun(estimator, job.spec, job.out_path, options=job.options, render=job.render, keep_partial=True,
                       maps_dir=job.maps_dir, on_note=report.note, window=window, trc_dir=job.trc_dir)
        report.started(estimator, run)
        return run.run(progress=report.progress)
    except BaseException:
        if run is not None:
            run.abort()  # closes the JSON valid, marked incomplete, if run() did not get to it
        raise
    finally:
        if window is not None:
            window.close()
