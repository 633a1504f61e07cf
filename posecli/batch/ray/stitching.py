"""Stitching a cut video: ids made consistent across the ranges, the joined result written.

The overlap frames of range ``k`` are also range ``k - 1``'s own frames and the network
output does not depend on the cut, so the same people appear in both; their ids are
matched by keypoint similarity (the tracker's OKS and optimal assignment,
:mod:`posecli.video.matching`) and the later range is relabelled. New people get the next
free ids in order of appearance, as one tracker over the whole video gives them.
Ranges travel from the workers as pickled part files beside the result.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import OutputError, PoseError
from ...formats.writers import ResultWriter
from ...io.atomic import AtomicFile, result_target
from ...types import Frame
from ...video.matching import assign, keypoint_area, keypoint_sigmas, oks
from ...video.run import VideoOptions
from ...video.track import TrackerConfig
from ..local import Job, describe_failure
from .chunking import JobOutcome


@dataclass
class RangeResult:
    """People of frames ``[first - warm_done, stop)`` with chunk-local ids, and how decoding
    ended. ``frames`` are in order; the first ``warm_done`` are the overlap."""

    first: int
    frames: list[Frame]
    warm_done: int
    stopped_early: bool
    error: str | None
    info: dict
    model: str
    skeleton: object


def _ids_in(frames: list[Frame]) -> list[int]:
    """Track ids in order of first appearance."""
    seen: dict[int, None] = {}
    for f in frames:
        for p in f.people:
            if p.track_id is not None:
                seen.setdefault(int(p.track_id), None)
    return list(seen)


def match_ids(before: list[Frame], after: list[Frame], min_similarity: float = 0.5,
              min_area: float = TrackerConfig.min_area) -> dict[int, int]:
    """``{id in after: id in before}`` for the people two runs saw in the same frames.

    ``before``/``after``: the overlap frames as each run saw them (matched by frame index).
    Similarity of two ids: OKS of their keypoints (person scale at least ``min_area``, as
    the tracker's) summed over the frames both appear in, divided by the frames either
    appears in; pairs chosen by optimal assignment, pairs below ``min_similarity`` refused.
    """
    by_index = {f.index: f for f in before}
    ids_a, ids_b = _ids_in(before), _ids_in(after)
    if not ids_a or not ids_b:
        return {}
    ra, rb = {i: n for n, i in enumerate(ids_a)}, {i: n for n, i in enumerate(ids_b)}
    total = np.zeros((len(ids_a), len(ids_b)))
    present_a = np.zeros(len(ids_a))
    present_b = np.zeros(len(ids_b))
    sigmas: dict[str, np.ndarray] = {}
    for fb in after:
        fa = by_index.get(fb.index)
        if fa is None:
            continue
        people_a = [p for p in fa.people if p.track_id is not None]
        people_b = [p for p in fb.people if p.track_id is not None]
        for p in people_a:
            present_a[ra[int(p.track_id)]] += 1
        for q in people_b:
            present_b[rb[int(q.track_id)]] += 1
        for p in people_a:
            s = sigmas.get(p.skeleton.name)
            if s is None:
                s = sigmas[p.skeleton.name] = keypoint_sigmas(p.skeleton)
            for q in people_b:
                if len(q.xy) != len(s):
                    continue
                area = max(min_area, keypoint_area(p.xy), keypoint_area(q.xy))
                total[ra[int(p.track_id)], rb[int(q.track_id)]] += oks(p.xy, q.xy, area, s)
    either = np.maximum(present_a[:, None], present_b[None, :])
    sim = np.divide(total, either, out=np.zeros_like(total), where=either > 0)
    return {ids_b[j]: ids_a[i] for i, j in assign(sim, min_similarity)}


def join_ranges(chunks: Iterator[RangeResult], min_similarity: float = 0.5,
                min_area: float = TrackerConfig.min_area) -> Iterator[Frame]:
    """Frames of consecutive ranges in order, ids made consistent across the cuts.

    Each range's overlap is matched against the previous range's own last frames; its
    other ids get the next free ids in order of appearance. A range that stopped early
    (truncated video) ends the video there, as one pass over the file would. The
    generator's return value is the :class:`RangeResult` that ended it. ``min_similarity``
    and ``min_area``: as in :func:`match_ids`.
    """
    next_id = 0
    tail: list[Frame] = []
    last = None
    for chunk in chunks:
        last = chunk
        own = chunk.frames[chunk.warm_done:]
        # 1. Ids seen in the overlap continue the previous range's ids.
        relabel = match_ids(tail, chunk.frames[:chunk.warm_done], min_similarity, min_area) if tail else {}
        # 2. The others are new people: next free ids, in order of appearance.
        for local in _ids_in(own):
            if local not in relabel:
                relabel[local] = next_id
                next_id += 1
        out = []
        for f in own:
            people = [p if p.track_id is None else dataclasses.replace(p, track_id=relabel[int(p.track_id)])
                      for p in f.people]
            out.append(dataclasses.replace(f, people=people))
            yield out[-1]
        tail = out
        if chunk.stopped_early:
            break
    return last


def write_part(path: Path, result: RangeResult) -> None:
    """Write a range's result for :func:`read_part` (atomic: complete or absent)."""
    with AtomicFile(path, "wb") as f:
        f.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def read_part(path: Path) -> RangeResult:
    """The :class:`RangeResult` a worker wrote; :class:`OutputError` when it is unreadable."""
    try:
        result = pickle.loads(path.read_bytes())
    except OSError as exc:
        raise OutputError(f"cannot read a range's part file ({exc.strerror})", path=path) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError):
        result = None
    if not isinstance(result, RangeResult):
        raise OutputError("a range's part file is damaged", path=path)
    return result


def join_video(job: Job, parts: list[Path], options: VideoOptions | None = None,
               min_similarity: float = 0.5) -> JobOutcome:
    """Write ``job``'s result from its ranges' part files (in order; the caller removes them).

    The result is what :func:`~posecli.batch.local.run_job` writes for the whole video: same
    header, frames, ids (up to cut-point mismatches, see the module notes) and trailer.
    """
    options = options or VideoOptions()
    first = read_part(parts[0])
    frames = people = 0
    ended = first

    def chunks():
        yield first
        for p in parts[1:]:
            yield read_part(p)

    # a per-frame folder is filled under a temporary name and renamed when complete, as locally
    with result_target(job.result, folder=job.fmt == "openpose") as target:
        writer = ResultWriter(job.fmt, target, model=first.model, skeleton=first.skeleton, kind="frames",
                              per_file_dir=job.fmt == "openpose", source={"video": first.info},
                              layout=job.layout, angles=job.angles)
        try:
            joined = join_ranges(chunks(), min_similarity, options.tracker.min_area)
            while True:
                try:
                    frame = next(joined)
                except StopIteration as stop:
                    ended = stop.value or ended
                    break
                writer.add(frame, image_id=frame.index)
                frames += 1
                people += len(frame.people)
            trailer = {"frames_done": frames}
            if ended.stopped_early:
                trailer["decode_error"] = ended.error
            writer.close(complete=True, keep_partial=False, trailer=trailer)
        except BaseException:
            writer.close(complete=False, keep_partial=False)
            raise
    return JobOutcome(job, "done", frames=frames, people=people,
                      warning=ended.error if ended.stopped_early else None, pid=os.getpid())


def join_task(job: Job, parts: list[Path], options: VideoOptions, min_similarity: float) -> JobOutcome:
    """Ray task around :func:`join_video`: failures come back as a failed outcome."""
    try:
        return join_video(job, parts, options, min_similarity)
    except (PoseError, OSError, ValueError, RuntimeError) as exc:
        return JobOutcome(job, "failed", describe_failure(exc, job.input), pid=os.getpid())
