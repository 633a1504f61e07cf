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

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2

from ..errors import OutputError
from ..formats.records import FORMATS, openpose_record
from ..formats.render import Renderer
from ..formats.writers import ResultWriter, write_json_atomic
from ..io.atomic import AtomicFile, replace_dir
from ..io.listing import list_inputs
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


def plan_batch(directory: str | Path, out: str | Path, *, recursive: bool = False, fmt: str = "posecli",
               render: bool = False, overwrite: bool = False) -> BatchPlan:
    """The jobs for every image and video in ``directory`` (sub-folders with ``recursive``).

    Results go to ``out`` mirroring the folder structure: ``out/sub/name.json`` (openpose:
    ``name_keypoints.json`` for an image, folder ``name/`` of per-frame files for a video);
    annotated outputs to ``out/sub/name_rendered.jpg`` / ``.mp4``. Inputs whose outputs
    exist are put in ``done`` unless ``overwrite``. Two inputs with the same name but
    different extensions in one folder keep the extension in their result names.
    """
    if fmt not in FORMATS:
        raise OutputError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    root, out = Path(directory), Path(out)
    listing = list_inputs(root, recursive=recursive, exclude=out)
    plan = BatchPlan(root, out, unsupported=listing.skipped)
    stems: dict[tuple, int] = {}
    for path in listing.files:
        key = (path.parent, path.stem.lower())
        stems[key] = stems.get(key, 0) + 1
    for path in listing.files:
        rel = path.relative_to(root)
        clash = stems[(path.parent, path.stem.lower())] > 1
        name = path.name if clash else path.stem
        folder = out / rel.parent
        kind = "video" if is_video(path) else "image"
        if fmt == "openpose":
            result = folder / (name if kind == "video" else f"{name}_keypoints.json")
        else:
            result = folder / f"{name}.json"
        rendered = folder / f"{name}{RENDER_SUFFIX}{'.mp4' if kind == 'video' else '.jpg'}" if render else None
        job = Job(path, kind, result, rendered, rel, fmt)
        (plan.done if job.is_done() and not overwrite else plan.todo).append(job)
    return plan


def run_job(estimator, job: Job, *, video: VideoOptions | None = None,
            progress: Callable[[int], None] | None = None,
            on_start: Callable[[int | None], None] | None = None, decoded=None) -> JobResult:
    """Compute one job with ``estimator``; outputs appear only when complete.

    Raises :class:`~posecli.errors.InputError` for an unreadable input.

    ``video``: options for videos (the format is the job's). ``progress(n)`` is called per
    frame of a video, after ``on_start(expected_frames)`` (None when unknown). Raises :class:`OutputError` when outputs cannot be written;
    nothing partial is left behind. ``decoded``: the photo already decoded by
    ``estimator.read_file`` (see :mod:`posecli.batch.prefetch`), else it is read here.
    """
    try:
        job.result.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder ({exc.strerror})", path=job.result.parent) from None
    if job.kind == "video":
        return _run_video(estimator, job, video or VideoOptions(), progress, on_start)
    return _run_image(estimator, job, decoded)


def _run_image(estimator, job: Job, decoded=None) -> JobResult:
    keep = job.render is not None
    if decoded is None:
        decoded = estimator.read_file(job.input, keep_image=keep)
    frame, image = estimator.estimate_decoded(decoded, job.input, keep_image=keep)
    if job.render is not None:
        ok, buf = cv2.imencode(job.render.suffix, Renderer()(image, frame.people))
        if not ok:
            raise OutputError("cannot encode the annotated image", path=job.render)
        with AtomicFile(job.render, "wb") as f:
            f.write(buf.tobytes())
    if job.fmt == "openpose":
        write_json_atomic(job.result, openpose_record(frame))
    else:
        writer = ResultWriter(job.fmt, job.result, model=estimator.model.info.name, skeleton=estimator.skeleton)
        try:
            writer.add(frame)
        except BaseException:
            writer.close(complete=False, keep_partial=False)
            raise
        writer.close()
    return JobResult(job, frames=1, people=len(frame.people), render=job.render)


def _run_video(estimator, job: Job, options: VideoOptions, progress, on_start) -> JobResult:
    from dataclasses import replace

    options = replace(options, fmt=job.fmt)
    per_frame = job.fmt == "openpose"
    # A per-frame folder is filled under a temporary name and renamed when complete.
    target = job.result.with_name(f".{job.result.name}.{uuid.uuid4().hex[:8]}.tmp") if per_frame else job.result
    try:
        run = VideoRun(estimator, job.input, target, options=options, render=job.render, keep_partial=False)
        try:
            if on_start is not None:
                on_start(run.expected)
            run.run(progress=progress)
        except BaseException:
            run.abort()  # an interrupt can land outside run(): leave no temporary file
            raise
        if per_frame:
            replace_dir(target, job.result)
    finally:
        if per_frame and target.exists():
            shutil.rmtree(target, ignore_errors=True)
    return JobResult(job, frames=run.frames_done, warning=run.error if run.stopped_early else None,
                     render=run.render_path, note=run.render_note)


