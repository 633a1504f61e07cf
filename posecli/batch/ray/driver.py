"""``posecli batch --engine ray``: a batch plan spread over a Ray cluster with Ray Data.

The plan's pending jobs become *units* of work: a whole input (an image, a short video),
or a frame range of a long video. Ray Data hands the units to a pool of actors that each
load the model once (one GPU per actor when the cluster has GPUs, CPU threads otherwise)::

    plan.todo -> units (long videos cut into overlapping frame ranges)
      -> ray.data.from_items -> map_batches(_Worker, ActorPoolStrategy)   [actors, model loaded once]
           whole input:  batch.run_job writes the result into OUTDIR (atomic, as locally)
           frame range:  people with chunk-local ids -> hidden part file beside the result
      -> driver: progress, failures; when every range of a video is in, a join task
           matches ids in the overlaps, relabels, writes the result (atomic) and drops the parts

OUTDIR must be a path every worker sees (a shared file system). Results are the local
engine's: same files, formats and resume semantics (``plan_batch`` decides what is done; a
result exists only when complete). A worker process that dies has its units retried by Ray
on a restarted actor (Ray Data creates its actor pools with ``max_restarts=-1`` and
``max_task_retries=-1``; Ray 2.60 deprecates passing them to ``map_batches``, so posecli
keeps those defaults); every file is written under a temporary name and renamed, so a retry
replaces, never duplicates, and nothing half-written is left (leftover temporary files of
killed workers are removed at the end of the run).

Cutting a video: range ``k`` owns frames ``[first_k, stop_k)`` and is processed from
``first_k - overlap`` with a fresh tracker, so its tracks are warmed up when its own frames
start. The overlap frames are also the previous range's own frames and the network output
does not depend on the cut, so the same people appear in both; their ids are matched by
keypoint similarity (OKS, optimal assignment) and the later range is relabelled. New people
get the next free ids in order of appearance, as one tracker over the whole video gives
them. Videos are cut only without ``--render`` and ``--smooth`` (an annotated video and the
smoothing filters are sequential through the whole clip).

``ray`` is imported lazily: without it :func:`run_batch_ray` raises
:class:`~posecli.errors.MissingExtraError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pickle
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from scipy.optimize import linear_sum_assignment

from ...errors import InputError, MissingExtraError, OutputError, PoseError
from ...formats.writers import ResultWriter
from ...io.atomic import AtomicFile
from ...io.video import VideoSource
from ...types import Frame
from ...video.pipeline import Pipeline
from ...video.run import VideoOptions
from ...video.track import Tracker, keypoint_area, keypoint_sigmas, oks
from ..local import BatchPlan, Job, JobResult, run_job

RAY_PURPOSE = "--engine ray"
_LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2  # results travel as files; the store holds small records
_JOIN_RETRIES = 3
# Ray Data settings for the run (restored after): no bars of its own (the caller shows
# progress), and a unit whose retries are spent is reported as failed, the run goes on.
_DATA_SETTINGS = {"enable_progress_bars": False, "print_on_execution_start": False, "max_errored_blocks": -1}


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
class _UnitOutcome:
    """A worker's answer for one unit (``error``: the model could not be loaded)."""

    key: str
    outcome: JobOutcome | None = None
    part: Path | None = None
    error: tuple[str, str] | None = None  # (PoseError subclass name, str(error))


@dataclass
class RayBatchResult:
    """Summary of a run: lists of ``(input, text)`` in the local engine's form."""

    processed: int = 0
    skipped: int = 0
    frames: int = 0
    warned: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[tuple[Path, str]] = field(default_factory=list)
    workers: int = 0
    resources: dict = field(default_factory=dict)


def describe_failure(exc: BaseException, path: Path) -> str:
    """The problem as the local engine lists it (without the file name it is about)."""
    if isinstance(exc, PoseError):
        return exc.message if getattr(exc, "path", None) in (str(path), None) else str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


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
    token = token or uuid.uuid4().hex[:8]
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


# ---------------------------------------------------------------------------------------------
# Frame ranges: processing, ids across the cuts, joining
# ---------------------------------------------------------------------------------------------
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


def process_range(estimator, path: str | Path, first: int, stop: int | None, warm: int = 0,
                  options: VideoOptions = VideoOptions()) -> RangeResult:
    """Frames ``[first - warm, stop)`` of a video (``stop`` None: to the end) through the
    estimator with a fresh tracker (when ``options.track``), as :class:`VideoRun` would."""
    begin = max(0, first - warm)
    source = VideoSource(path, first_frame=begin, stop_frame=stop)
    tracker = Tracker(options.tracker) if options.track else None
    pipeline = Pipeline(estimator, source, source=str(source.path), batch_size=options.batch_size, tracker=tracker)
    frames = [r.frame for r in pipeline]
    warm_done = sum(1 for f in frames if f.index < first)
    return RangeResult(first, frames, warm_done, source.stopped_early, source.error, source.info(),
                       estimator.model.info.name, estimator.skeleton)


def _ids_in(frames: list[Frame]) -> list[int]:
    """Track ids in order of first appearance."""
    seen: dict[int, None] = {}
    for f in frames:
        for p in f.people:
            if p.track_id is not None:
                seen.setdefault(int(p.track_id), None)
    return list(seen)


def match_ids(before: list[Frame], after: list[Frame], min_similarity: float = 0.5) -> dict[int, int]:
    """``{id in after: id in before}`` for the people two runs saw in the same frames.

    ``before``/``after``: the overlap frames as each run saw them (matched by frame index).
    Similarity of two ids: OKS of their keypoints summed over the frames both appear in,
    divided by the frames either appears in; pairs chosen by optimal assignment, pairs
    below ``min_similarity`` refused.
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
                area = max(32.0 * 32.0, keypoint_area(p.xy), keypoint_area(q.xy))
                total[ra[int(p.track_id)], rb[int(q.track_id)]] += oks(p.xy, q.xy, area, s)
    either = np.maximum(present_a[:, None], present_b[None, :])
    sim = np.divide(total, either, out=np.zeros_like(total), where=either > 0)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return {ids_b[j]: ids_a[i] for i, j in zip(rows, cols) if sim[i, j] >= min_similarity}


def join_ranges(chunks: Iterator[RangeResult], min_similarity: float = 0.5) -> Iterator[Frame]:
    """Frames of consecutive ranges in order, ids made consistent across the cuts.

    Each range's overlap is matched against the previous range's own last frames; its
    other ids get the next free ids in order of appearance. A range that stopped early
    (truncated video) ends the video there, as one pass over the file would. The
    generator's return value is the :class:`RangeResult` that ended it.
    """
    next_id = 0
    tail: list[Frame] = []
    last = None
    for chunk in chunks:
        last = chunk
        own = chunk.frames[chunk.warm_done:]
        # 1. Ids seen in the overlap continue the previous range's ids.
        relabel = match_ids(tail, chunk.frames[:chunk.warm_done], min_similarity) if tail else {}
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


def _write_part(path: Path, result: RangeResult) -> None:
    with AtomicFile(path, "wb") as f:
        f.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def _read_part(path: Path) -> RangeResult:
    try:
        return pickle.loads(path.read_bytes())
    except OSError as exc:
        raise OutputError(f"cannot read a range's part file ({exc.strerror})", path=path) from None


def join_video(job: Job, parts: list[Path], options: VideoOptions = VideoOptions(),
               min_similarity: float = 0.5) -> JobOutcome:
    """Write ``job``'s result from its ranges' part files (in order; the caller removes them).

    The result is what :func:`~posecli.batch.local.run_job` writes for the whole video: same
    header, frames, ids (up to cut-point mismatches, see the module notes) and trailer.
    """
    from ...io.atomic import replace_dir

    first = _read_part(parts[0])
    per_frame = job.fmt == "openpose"
    # a per-frame folder is filled under a temporary name and renamed when complete, as locally
    target = job.result.with_name(f".{job.result.name}.{uuid.uuid4().hex[:8]}.tmp") if per_frame \
        else job.result
    writer = ResultWriter(job.fmt, target, model=first.model, skeleton=first.skeleton, kind="frames",
                          per_file_dir=per_frame, source={"video": first.info})
    frames = people = 0
    ended = first
    try:
        def chunks():
            yield first
            for p in parts[1:]:
                yield _read_part(p)

        joined = join_ranges(chunks(), min_similarity)
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
        if per_frame:
            replace_dir(target, job.result)
    except BaseException:
        writer.close(complete=False, keep_partial=False)
        raise
    finally:
        if per_frame and target.exists():
            shutil.rmtree(target, ignore_errors=True)
    return JobOutcome(job, "done", frames=frames, people=people,
                      warning=ended.error if ended.stopped_early else None, pid=os.getpid())


def _join_task(job: Job, parts: list[Path], options: VideoOptions, min_similarity: float) -> JobOutcome:
    """Ray task around :func:`join_video`: failures come back as a failed outcome."""
    try:
        return join_video(job, parts, options, min_similarity)
    except (PoseError, OSError, ValueError, RuntimeError) as exc:
        return JobOutcome(job, "failed", describe_failure(exc, job.input), pid=os.getpid())


# ---------------------------------------------------------------------------------------------
# The actor
# ---------------------------------------------------------------------------------------------
class _Worker:
    """A Ray Data actor: loads the model once, then computes the units it is handed.

    Batches are ``{"unit": [pickled Unit, ...]}``; answers ``{"outcome": [pickled
    _UnitOutcome, ...]}``. An input's failure is an outcome, never an exception, so one bad
    file does not stop the run; a model that cannot be loaded is reported on every unit.
    """

    def __init__(self, estimator_options: dict, video: VideoOptions, auto_batch_size: bool = False):
        from ...inference.estimator import PoseEstimator

        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # posecli reports decoding problems itself
        self.video = video
        self.error: PoseError | None = None
        try:
            self.estimator = PoseEstimator(**estimator_options)
        except PoseError as exc:
            self.estimator = None
            self.error = exc
            return
        if auto_batch_size:  # as the local CLI: 1 frame per run on the CPU, 4 on a GPU
            size = 1 if self.estimator.model.device == "cpu" else 4
            self.video = dataclasses.replace(video, batch_size=size)

    def __call__(self, batch: dict) -> dict:
        answers = [pickle.dumps(self._one(pickle.loads(blob))) for blob in batch["unit"]]
        return {"outcome": np.array(answers, dtype=object)}

    def _one(self, unit: Unit) -> _UnitOutcome:
        if self.error is not None:
            return _UnitOutcome(unit.key, error=(type(self.error).__name__, str(self.error)))
        job = unit.job
        try:
            if unit.is_range:
                job.result.parent.mkdir(parents=True, exist_ok=True)
                result = process_range(self.estimator, job.input, unit.first, unit.stop, unit.warm,
                                       self.video)
                _write_part(unit.part, result)
                return _UnitOutcome(unit.key, part=unit.part)
            res: JobResult = run_job(self.estimator, job, video=self.video)
            return _UnitOutcome(unit.key, JobOutcome(job, "done", frames=res.frames, people=res.people,
                                                     warning=res.warning, note=res.note, pid=os.getpid()))
        except (PoseError, OSError, ValueError, RuntimeError) as exc:  # cv2.error is an Exception too
            failed = JobOutcome(job, "failed", describe_failure(exc, job.input), pid=os.getpid())
            return _UnitOutcome(unit.key, failed)


# ---------------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------------
def import_ray():
    """``ray`` and ``ray.data``, or :class:`MissingExtraError` saying what to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingExtraError("ray", "ray", RAY_PURPOSE) from None
    return ray


@contextlib.contextmanager
def _quiet_loggers(level: int = logging.ERROR):
    """Keep Ray's and Ray Data's info lines off the terminal while the run lasts."""
    loggers = [logging.getLogger(n) for n in ("ray", "ray.data", "ray.data._internal")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, before):
            lg.setLevel(lv)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                object_store_memory: int = _LOCAL_OBJECT_STORE_BYTES):
    """Ray for the run: the running session if there is one, else join ``address``, else
    start a local instance (no dashboard, a small object store: results travel as files).
    Shut down on exit if started here. Ray 2.60 advertises the node's own address even for
    a local instance (it resolves 127.0.0.1 to it); nothing here asks for remote access."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                  configure_logging=True)
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                     object_store_memory=object_store_memory, **common)
    except ConnectionError as exc:
        raise InputError(f"cannot reach the Ray cluster at {address} ({exc})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _pool_settings(ray, estimator_options: dict, num_workers: int | None) -> tuple[int, dict, dict]:
    """``(workers, actor resources, estimator options)`` for the cluster Ray sees."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 1.0)), int(res.get("GPU", 0))
    opts = dict(estimator_options)
    device = opts.get("device", "auto")
    if gpus and device in ("auto", "cuda", "tensorrt"):
        workers = num_workers or gpus
        return workers, {"num_gpus": min(1.0, gpus / workers), "num_cpus": min(1.0, cpus / workers)}, opts
    if device == "auto":
        opts["device"] = "cpu"
    threads = opts.get("threads")
    workers = num_workers or max(1, int(cpus // (threads or 1)))
    share = cpus / workers
    if not threads:
        opts["threads"] = max(1, int(share))
    return workers, {"num_cpus": min(float(opts["threads"]), share)}, opts


def _absolute(job: Job) -> Job:
    """``job`` with absolute paths (workers do not share the driver's working folder)."""
    render = None if job.render is None else job.render.absolute()
    return dataclasses.replace(job, input=job.input.absolute(), result=job.result.absolute(), render=render)


def _absolute_model(options: dict) -> dict:
    """Estimator options with a model given as a relative path made absolute."""
    from ...network.store import looks_like_path

    ref = options.get("model")
    if isinstance(ref, (str, Path)) and looks_like_path(str(ref)):
        return {**options, "model": str(Path(ref).expanduser().absolute())}
    return options


def cleanup_temporaries(jobs: list[Job]) -> int:
    """Remove temporary files of ``jobs`` left by killed workers (never a result); returns
    how many. Call only while no worker writes them."""
    removed = 0
    for job in jobs:
        names = [job.result.name] + ([job.render.name, job.render.stem] if job.render is not None else [])
        folder = job.result.parent
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            n = entry.name
            if not any(n.startswith(f".{base}.") for base in names):
                continue
            if not (n.endswith((".tmp", ".old", ".pkl")) or ".tmp." in n):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
            removed += 1
    return removed


def run_batch_ray(plan: BatchPlan, estimator_options: dict | None = None, *, address: str | None = None,
                  num_workers: int | None = None, video: VideoOptions = VideoOptions(),
                  chunking: ChunkConfig | None = ChunkConfig(), auto_batch_size: bool = False,
                  num_cpus: int | None = None, on_start: Callable[[int], None] | None = None,
                  on_result: Callable[[JobOutcome], None] | None = None) -> RayBatchResult:
    """Run ``plan.todo`` on Ray; each result is written by a worker into ``plan.out``.

    ``estimator_options``: :class:`~posecli.inference.estimator.PoseEstimator` keyword arguments
    (the model must resolve on every worker: a path on shared storage, or a store name
    imported on each node). ``address``: a cluster to join (None: a local instance with
    ``num_cpus``, default all cores). ``num_workers``: actors (default: one per GPU, else
    one per ``threads`` CPUs). ``video``: options for videos (its format is each job's).
    ``chunking``: how long videos are cut (None: never). ``auto_batch_size``: each worker
    picks the frames per network run by its device (1 on the CPU, 4 on a GPU) instead of
    ``video.batch_size``. ``on_start(total)`` and
    ``on_result(outcome)`` are called on the driver, per input, for progress reports.

    Raises :class:`MissingExtraError` without ray, the worker's :class:`PoseError` when the
    model cannot be loaded, :class:`InputError` when the cluster cannot be reached.
    """
    result = RayBatchResult(skipped=len(plan.done))
    if on_start is not None:
        on_start(len(plan.todo))
    if not plan.todo:
        return result
    cleanup_temporaries(plan.todo)
    jobs = {j.rel.as_posix(): j for j in plan.todo}  # reports name inputs as the plan does
    work = dataclasses.replace(plan, todo=[_absolute(j) for j in plan.todo], done=[])
    units = plan_units(work, video, chunking)
    options = _absolute_model(estimator_options or {})
    try:
        with _quiet_loggers(), ray_session(address, num_cpus) as ray:
            _execute(ray, units, jobs, options, num_workers, video, auto_batch_size, chunking, result,
                     on_result)
    finally:
        cleanup_temporaries(plan.todo)  # part files, and temporary files of killed workers
    return result


def _setup_error(kind: str, text: str) -> PoseError:
    """A worker's model-loading error, rebuilt on the driver (same class and text)."""
    from ... import errors

    cls = getattr(errors, kind, PoseError)
    if not (isinstance(cls, type) and issubclass(cls, PoseError)) or cls is MissingExtraError:
        cls = PoseError
    return cls(text)


def _execute(ray, units: list[Unit], jobs: dict[str, Job], estimator_options: dict, num_workers: int | None,
             video: VideoOptions, auto_batch_size: bool, chunking: ChunkConfig | None, result: RayBatchResult,
             on_result) -> None:
    """Stream the units through the actor pool; join cut videos as their ranges arrive."""
    from ray.data import ActorPoolStrategy, DataContext

    ctx = DataContext.get_current()
    before = {k: getattr(ctx, k) for k in _DATA_SETTINGS}
    try:
        for k, v in _DATA_SETTINGS.items():
            setattr(ctx, k, v)
        _stream(ray, units, jobs, estimator_options, num_workers, video, auto_batch_size, chunking, result,
                on_result, ActorPoolStrategy)
    finally:
        for k, v in before.items():
            setattr(ctx, k, v)


def _stream(ray, units, jobs, estimator_options, num_workers, video, auto_batch_size, chunking, result,
            on_result, ActorPoolStrategy) -> None:
    workers, resources, opts = _pool_settings(ray, estimator_options, num_workers)
    workers = min(workers, len(units))
    result.workers, result.resources = workers, dict(resources)
    parts_in: dict[str, dict[int, Path]] = {}  # a cut video's part files, by range, as they arrive
    join = ray.remote(num_cpus=0, max_retries=_JOIN_RETRIES)(_join_task)
    joins: dict = {}  # ObjectRef -> (job, part files)
    finished: set[str] = set()
    min_sim = chunking.min_similarity if chunking is not None else 0.5

    def report(outcome: JobOutcome) -> None:
        key = outcome.job.rel.as_posix()
        if key in finished:  # a retried unit answering twice
            return
        finished.add(key)
        outcome = dataclasses.replace(outcome, job=jobs.get(key, outcome.job))
        if outcome.status == "failed":
            result.failed.append((outcome.job.input, outcome.problem or "failed"))
        else:
            result.processed += 1
            result.frames += outcome.frames
            if outcome.warning:
                result.warned.append((outcome.job.input, outcome.warning))
            if outcome.note:
                result.notes.append((outcome.job.input, outcome.note))
        if on_result is not None:
            on_result(outcome)

    def collect_joins(timeout: float) -> None:
        if not joins:
            return
        ready, _ = ray.wait(list(joins), num_returns=len(joins), timeout=timeout)
        for ref in ready:
            job, parts = joins.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as exc:  # the join task's retries are spent
                outcome = JobOutcome(job, "failed", f"joining its frame ranges failed: {type(exc).__name__}")
            for p in parts:
                with contextlib.suppress(OSError):
                    p.unlink()
            report(outcome)

    seen: set[str] = set()
    items = [{"unit": pickle.dumps(u, protocol=pickle.HIGHEST_PROTOCOL)} for u in units]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(_Worker, batch_size=1, batch_format="numpy",
                        compute=ActorPoolStrategy(size=workers),
                        fn_constructor_kwargs={"estimator_options": opts, "video": video,
                                               "auto_batch_size": auto_batch_size}, **resources)
    by_key = {u.key: u for u in units}
    for row in ds.iter_rows():
        answer: _UnitOutcome = pickle.loads(row["outcome"])
        if answer.key in seen:
            continue
        seen.add(answer.key)
        if answer.error is not None:  # the model cannot be loaded: nothing can be done
            raise _setup_error(*answer.error)
        unit = by_key[answer.key]
        if answer.outcome is not None:
            if unit.is_range:  # a range failed: the whole video failed
                parts_in.pop(unit.job.rel.as_posix(), None)
            report(answer.outcome)
        else:
            vid = unit.job.rel.as_posix()
            if vid in finished:
                continue
            got = parts_in.setdefault(vid, {})
            got[unit.chunk] = answer.part
            if len(got) == unit.chunks:
                parts = [got[k] for k in range(unit.chunks)]
                joins[join.remote(unit.job, parts, video, min_sim)] = (unit.job, parts)
        collect_joins(0)
    collect_joins(None)
    # units Ray gave up on (none while the pool retries without limit, Ray Data's default)
    for u in units:
        key = u.job.rel.as_posix()
        if key not in finished:
            report(JobOutcome(u.job, "failed", "lost: the worker processing it died on every retry"))
