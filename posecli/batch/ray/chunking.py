"""Units of work for the Ray engine: whole inputs, or frame ranges of long videos.

Cutting a video: range ``k`` owns frames ``[first_k, stop_k)`` and is processed from
``first_k - overlap`` with a fresh tracker, so its tracks are warmed up when its own frames
start (:mod:`.stitching` matches the ids in the overlaps). Videos are cut only without
``--render`` and ``--smooth`` (an annotated video and the smoothing filters are sequential
through the whole clip). A unit's answer is a :class:`JobOutcome`, as the local engine
reports an input, or a part file for a range.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...io.atomic import new_token
from ...video.run import VideoOptions
from ..local import BatchPlan, Job


@dataclass(frozen=True)
class ChunkConfig:
    """How long videos are cut. ``frames``: frames each range owns; ``overlap``: frames
    before its start a range also processes to warm its tracker up and to match ids (None:
    the tracker's longest gap in frames (at 60 fps) + 2, enough for every track that one tracker over the whole
    video would still hold at the cut to be seen in the overlap, or to have expired in both).
    Videos of up to ``frames + overlap`` frames are not cut. ``min_similarity``: mean OKS
    over the overlap at which two ids are the same person.
    """

    frames: int = 600
    overlap: int | None = None
    min_similarity: float = 0.5

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError("frames per range must be at least 1")
        if self.overlap is not None and not 0 <= self.overlap <= self.frames:
            raise ValueError("overlap must be between 0 and the frames per range")

    def overlap_for(self, video: VideoOptions) -> int:
        """Frames of overlap for videos processed with ``video``."""
        if self.overlap is not None:
            return self.overlap
        return min(self.frames, video.tracker.max_age_frames() + 2) if video.track else 0



# ---------------------------------------------------------------------------------------------
# Units of work and what comes back
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """One piece of work: a whole job, or frames ``[first, stop)`` of a video job processed
    from ``first - warm`` (range ``chunk`` of ``chunks``; its part file is ``part``)."""

    key: str
    job: Job
    chunk: int = 0
    chunks: int = 1
    first: int = 0
    stop: int | None = None
    warm: int = 0
    part: Path | None = None

    @property
    def is_range(self) -> bool:
        return self.part is not None


@dataclass
class JobOutcome:
    """What became of one input, as the local engine reports it.

    ``status``: ``done`` or ``failed`` (``problem`` says why, without the file name);
    ``warning``: a video that stopped early; ``note``: e.g. the annotated video's container.
    ``pid``: the worker process that finished it (for a cut video, the one that joined it).
    """

    job: Job
    status: str
    problem: str | None = None
    frames: int = 0
    people: int = 0
    warning: str | None = None
    note: str | None = None
    pid: int | None = None


@dataclass
class UnitOutcome:
    """A worker's answer for one unit (``error``: the model could not be loaded)."""

    key: str
    outcome: JobOutcome | None = None
    part: Path | None = None
    error: tuple[str, str] | None = None  # (PoseError subclass name, str(error))




# ---------------------------------------------------------------------------------------------
# Planning units
# ---------------------------------------------------------------------------------------------
def _frame_count(path: Path) -> int:
    """Frames the container announces (0 when unknown or unreadable); no decoding."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    finally:
        cap.release()


def can_cut(job: Job, video: VideoOptions) -> bool:
    """True when a video job may be processed in frame ranges (see the module notes)."""
    return (job.kind == "video" and job.render is None and video.smooth is None and video.start is None
            and video.end is None and video.step == 1)


def ranges(count: int, chunking: ChunkConfig, overlap: int | None = None) -> list[tuple[int, int, int]]:
    """``(first, stop, warm)`` frame ranges covering ``count`` frames (one when short), in
    equal ranges of at most ``chunking.frames``, each warmed up on ``overlap`` frames
    (default: ``chunking.overlap`` or 0). The last range runs to the end of the video
    (``stop`` None in the units) so that frames past the container's count are not lost.
    """
    overlap = overlap if overlap is not None else (chunking.overlap or 0)
    if count <= chunking.frames + overlap:
        return [(0, count, 0)]
    n = -(-count // chunking.frames)
    size = -(-count // n)  # equal ranges
    out = []
    for k in range(n):
        first = k * size
        out.append((first, min(count, first + size), min(overlap, first)))
    return out


def plan_units(plan: BatchPlan, video: VideoOptions, chunking: ChunkConfig | None = ChunkConfig(),
               token: str | None = None, probe_threads: int = 8) -> list[Unit]:
    """The units for ``plan.todo``, biggest first (long videos start early, the pool stays busy).

    Videos that :func:`can_cut` are probed for their frame count (container only, in
    threads) and cut by ``chunking`` (None: never cut). ``token`` names this run's part files.
    """
    token = token or new_token()
    cuttable = [j for j in plan.todo if chunking is not None and can_cut(j, video)]
    with ThreadPoolExecutor(max(1, probe_threads)) as pool:
        counts = dict(zip([j.input for j in cuttable], pool.map(_frame_count, [j.input for j in cuttable])))
    sized: list[tuple[int, list[Unit]]] = []  # (frames, units) per job
    for job in plan.todo:
        key = job.rel.as_posix()
        count = counts.get(job.input, 0)
        parts = ranges(count, chunking, chunking.overlap_for(video)) if count and chunking is not None else []
        if len(parts) <= 1:
            sized.append((count or (1 if job.kind == "image" else 100), [Unit(key, job)]))
            continue
        units = []
        for k, (first, stop, warm) in enumerate(parts):
            part = job.result.parent / f".{job.result.name}.part{k:05d}-{token}.pkl"
            last = k == len(parts) - 1
            units.append(Unit(f"{key}#{k}", job, k, len(parts), first, None if last else stop, warm, part))
        sized.append((count, units))
    sized.sort(key=lambda su: -su[0])  # stable; a video's ranges stay together, in order
    return [u for _, units in sized for u in units]
