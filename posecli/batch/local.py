"""Folder jobs: every image and video under a folder, one result per input, resumable.

:func:`plan_batch` lists the inputs and decides, for each, where its result goes (the
folder structure mirrored under the output folder) and whether it is already done;
:func:`run_job` computes one input with a loaded estimator. Jobs are plain picklable
records, so another engine (threads, processes, Ray) can hand them out.

A result appears only when it is complete: files are written to temporary names and
renamed into place (an annotated image or video first, the result last), so "the result
exists" means "this input is done", and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2

from ..errors import OutputConflict, OutputError, PoseError
from ..formats.layouts import check_layout
from ..formats.maps import write_maps
from ..formats.records import FORMATS, openpose_record, result_suffix
from ..formats.render import Renderer
from ..formats.writers import ResultWriter, write_json_atomic
from ..io.atomic import AtomicFile, result_target
from ..io.listing import list_inputs
from ..io.outputs import same_path, unique_names
from ..io.paths import is_video
from ..video.run import VideoOptions, VideoRun

RENDER_SUFFIX = "_rendered"


@dataclass(frozen=True)
class Job:
    """One input and where its outputs go.

    ``kind``: ``image`` or ``video``. ``result``: the result file, or for a video in the
    openpose format the folder of per-frame files. ``render``: the annotated image/video
    (None: not wanted). ``rel``: the input's path relative to the batch folder.
    """

    input: Path
    kind: str
    result: Path
    render: Path | None
    rel: Path
    fmt: str = "posecli"
    layout: str = "coco18"  # the openpose format's keypoint order (posecli.formats.layouts)
    angles: bool = False  # the csv format's angle rows (posecli.angles)

    def is_done(self) -> bool:
        """True when every output of the job exists (outputs only appear when complete)."""
        if not self.result.exists():
            return False
        if self.render is None:
            return True
        return self.render.exists() or (self.kind == "video" and self.render.with_suffix(".avi").exists())


@dataclass
class BatchPlan:
    """``todo``: jobs to run; ``done``: jobs whose results exist; ``unsupported``: skipped files."""

    root: Path
    out: Path
    todo: list[Job] = field(default_factory=list)
    done: list[Job] = field(default_factory=list)
    unsupported: list[Path] = field(default_factory=list)
    #: inputs and folders that cannot be processed, with the reason (symlink loops,
    #: unreadable folders, result names too long): reported, the rest is processed
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        return sorted(self.todo + self.done, key=lambda j: j.rel.parts)


@dataclass
class JobResult:
    """What :func:`run_job` did: frames processed, and for a video a decoding problem."""

    job: Job
    frames: int = 0
    people: int = 0
    warning: str | None = None
    render: Path | None = None
    note: str | None = None


def describe_failure(exc: BaseException, path: Path) -> str:
    """The problem as the local engine lists it (without the file name it is about)."""
    if isinstance(exc, PoseError):
        return exc.message if getattr(exc, "path", None) in (str(path), None) else str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def plan_batch(directory: str | Path, out: str | Path, *, recursive: bool = False, fmt: str = "posecli",
               render: bool = False, overwrite: bool = False, layout: str = "coco18",
               render_dir: str | Path | None = None, angles: bool = False) -> BatchPlan:
    """The jobs for every image and video in ``directory`` (sub-folders with ``recursive``).

    Results go to ``out`` mirroring the folder structure: ``out/sub/name.json`` (openpose:
    ``name_keypoints.json`` for an image, folder ``name/`` of per-frame files for a video;
    csv: ``name.csv``);
    annotated outputs to ``out/sub/name_rendered.jpg`` / ``.mp4`` (``render_dir/sub/...`` when given). Inputs whose outputs
    exist are put in ``done`` unless ``overwrite``. Two inputs with the same name but
    different extensions in one folder keep the extension in their result names; names
    that still clash (``a.jpg`` and ``a.jpg.jpg`` beside ``a.png``) get ``-2``, ``-3`` in
    sorted order. ``out`` may not be ``directory`` itself (:class:`OutputConflict`); files
    under ``directory`` that are results of this plan are never taken for inputs.
    """
    if fmt not in FORMATS:
        raise OutputError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    root, out = Path(directory), Path(out)
    if root.is_dir() and same_path(root, out):
        raise OutputConflict("out is the input folder itself: results would be taken for inputs; "
                             "give another folder", path=out)
    listing = list_inputs(root, recursive=recursive, exclude=out)
    plan = BatchPlan(root, out, unsupported=listing.skipped, failed=list(listing.problems))
    rendered = None if not render else Path(render_dir) if render_dir is not None else out
    jobs = [replace(job, layout=check_layout(layout), angles=angles) for job in _jobs(listing.files, root, out, fmt, rendered)]
    # Results of this plan found among the inputs (an --out above the folder, with -R) are
    # ours, never inputs: a rerun must find the same inputs.
    produced = {os.path.realpath(p) for job in jobs for p in (job.result, job.render) if p is not None}
    name_max = _name_max(out)
    for job in jobs:
        if os.path.realpath(job.input) in produced:
            continue
        too_long = next((p for p in (job.result, job.render) if p is not None and len(os.fsencode(p.name)) > name_max),
                        None)
        if too_long is not None:
            size = len(os.fsencode(too_long.name))
            plan.failed.append((job.input, f"its result name would be {size} bytes, over the limit of {name_max}"))
            continue
        try:
            done = job.is_done() and not overwrite
        except OSError as exc:
            plan.failed.append((job.input, f"cannot check its result ({exc.strerror})"))
            continue
        (plan.done if done else plan.todo).append(job)
    return plan


def _jobs(files: list[Path], root: Path, out: Path, fmt: str, render: Path | None) -> list[Job]:
    """One job per input, result names unique across the whole plan (see :func:`plan_batch`);
    annotated outputs under ``render`` (None: none)."""
    by_folder: dict[Path, list[Path]] = {}
    for path in files:
        by_folder.setdefault(path.parent, []).append(path)
    names = {}
    for group in by_folder.values():
        names.update(zip(group, unique_names(group)))
    used: set[str] = set()
    jobs = []
    for path in files:
        rel = path.relative_to(root)
        folder = out / rel.parent
        kind = "video" if is_video(path) else "image"
        base, n = names[path], 1
        while True:
            name = base if n == 1 else f"{base}-{n}"
            if fmt == "openpose":
                result = folder / (name if kind == "video" else f"{name}_keypoints.json")
            else:
                result = folder / f"{name}{result_suffix(fmt)}"
            rendered = (render / rel.parent / f"{name}{RENDER_SUFFIX}{'.mp4' if kind == 'video' else '.jpg'}"
                        if render is not None else None)
            keys = {str(p).lower() for p in (result, rendered) if p is not None}
            if kind == "video" and rendered is not None:
                keys.add(str(rendered.with_suffix(".avi")).lower())
            if not keys & used:
                break
            n += 1
        used |= keys
        jobs.append(Job(path, kind, result, rendered, rel, fmt))
    return jobs


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system under ``folder`` takes (255 if unknown)."""
    for p in (folder, *folder.absolute().parents):
        if p.exists():
            try:
                return int(os.pathconf(p, "PC_NAME_MAX"))
            except (OSError, ValueError):
                break
    return 255


def run_job(estimator, job: Job, *, video: VideoOptions | None = None,
            progress: Callable[[int], None] | None = None,
            on_start: Callable[[int | None], None] | None = None, decoded=None,
            maps_dir: str | Path | None = None) -> JobResult:
    """Compute one job with ``estimator``; outputs appear only when complete.

    Raises :class:`~posecli.errors.InputError` for an unreadable input.

    ``video``: options for videos (the format is the job's; its ``renderer`` draws images
    too). ``progress(n)`` is called per
    frame of a video, after ``on_start(expected_frames)`` (None when unknown). Raises :class:`OutputError` when outputs cannot be written;
    nothing partial is left behind. ``decoded``: the photo already decoded by
    ``estimator.read_file`` (see :mod:`posecli.batch.prefetch`), else it is read here.
    ``maps_dir``: also save the network's maps (the estimator made with ``keep_maps=True``),
    mirroring the folder: ``maps_dir/sub/photo.jpg.npz``, ``maps_dir/sub/clip.mp4/clip_<frame>.npz``;
    they are written before the result, so a finished result has its maps.
    """
    for folder in {job.result.parent, *([job.render.parent] if job.render is not None else [])}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder ({exc.strerror})", path=folder) from None
    maps = None if maps_dir is None else Path(maps_dir) / job.rel.parent / job.rel.name
    if job.kind == "video":
        return _run_video(estimator, job, video or VideoOptions(), progress, on_start, maps)
    return _run_image(estimator, job, (video.renderer if video is not None else None) or Renderer(), decoded,
                      None if maps is None else maps.with_name(maps.name + ".npz"))


def _run_image(estimator, job: Job, renderer: Renderer, decoded=None, maps: Path | None = None) -> JobResult:
    keep = job.render is not None
    if decoded is None:
        decoded = estimator.read_file(job.input, keep_image=keep)
    frame, image = estimator.estimate_decoded(decoded, job.input, keep_image=keep)
    fused = frame.extra.pop("maps", None)
    if maps is not None:
        if fused is None:
            raise OutputError("no maps to write: make the estimator with keep_maps=True", path=maps)
        maps.parent.mkdir(parents=True, exist_ok=True)
        write_maps(maps, fused, estimator.skeleton)
    if job.render is not None:
        ok, buf = cv2.imencode(job.render.suffix, renderer(image, frame.people))
        if not ok:
            raise OutputError("cannot encode the annotated image", path=job.render)
        with AtomicFile(job.render, "wb") as f:
            f.write(buf.tobytes())
    if job.fmt == "openpose":
        write_json_atomic(job.result, openpose_record(frame, job.layout))
    else:
        writer = ResultWriter(job.fmt, job.result, model=estimator.model.info.name, skeleton=estimator.skeleton,
                              angles=job.angles)
        try:
            writer.add(frame)
        except BaseException:
            writer.close(complete=False, keep_partial=False)
            raise
        writer.close()
    return JobResult(job, frames=1, people=len(frame.people), render=job.render)


def _run_video(estimator, job: Job, options: VideoOptions, progress, on_start, maps: Path | None) -> JobResult:
    options = replace(options, fmt=job.fmt, layout=job.layout, angles=job.angles)
    # A per-frame folder is filled under a temporary name and renamed when complete.
    with result_target(job.result, folder=job.fmt == "openpose") as target:
        run = VideoRun(estimator, job.input, target, options=options, render=job.render, keep_partial=False,
                       maps_dir=maps)
        try:
            if on_start is not None:
                on_start(run.expected)
            run.run(progress=progress)
        except BaseException:
            run.abort()  # an interrupt can land outside run(): leave no temporary file
            raise
    return JobResult(job, frames=run.frames_done, warning=run.error if run.stopped_early else None,
                     render=run.render_path, note=run.render_note)


