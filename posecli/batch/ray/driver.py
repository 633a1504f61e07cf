"""``posecli batch --engine ray``: a batch plan spread over a Ray cluster with Ray Data.

The plan's pending jobs become *units* of work: a whole input (an image, a short video),
or a frame range of a long video. Ray Data hands the units to a pool of actors that each
load the model once (one GPU per actor when the cluster has GPUs, CPU threads otherwise)::

    plan.todo -> units (long videos cut into overlapping frame ranges)
      -> ray.data.from_items -> map_batches(Worker, ActorPoolStrategy)   [actors, model loaded once]
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

The modules: :mod:`.chunking` (units, and cutting long videos), :mod:`.worker` (the
actor), :mod:`.stitching` (ids across the cuts, the joined result), this one (Ray itself).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InputError, MissingExtraError, PoseError, error_class
from ...video.run import VideoOptions
from ..local import BatchPlan, Job
from .chunking import ChunkConfig, JobOutcome, Unit, UnitOutcome, plan_units
from .stitching import join_task
from .worker import Worker

RAY_PURPOSE = "the Ray engine"
_LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2  # results travel as files; the store holds small records
_JOIN_RETRIES = 3
_DEFAULT_CHUNKING = ChunkConfig()
# Ray Data settings for the run (restored after): no bars of its own (the caller shows
# progress), and a unit whose retries are spent is reported as failed, the run goes on.
_DATA_SETTINGS = {"enable_progress_bars": False, "print_on_execution_start": False, "max_errored_blocks": -1}


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


# ---------------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------------
def import_ray():
    """``ray`` and ``ray.data``, or :class:`MissingExtraError` saying what to install."""
    try:
        import ray
        import ray.data
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
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
              "configure_logging": True}
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
                  num_workers: int | None = None, video: VideoOptions | None = None,
                  chunking: ChunkConfig | None = _DEFAULT_CHUNKING, auto_batch_size: bool = False,
                  num_cpus: int | None = None, on_start: Callable[[int], None] | None = None,
                  on_result: Callable[[JobOutcome], None] | None = None) -> RayBatchResult:
    """Run ``plan.todo`` on Ray; each result is written by a worker into ``plan.out``.

    ``estimator_options``: :class:`~posecli.inference.estimator.PoseEstimator` keyword arguments
    (the model must resolve on every worker: a path on shared storage, or a store name
    imported on each node). ``address``: a cluster to join (None: a local instance with
    ``num_cpus``, default all cores). ``num_workers``: actors (default: one per GPU, else
    one per ``threads`` CPUs). ``video``: options for videos (its format is each job's;
    None: the defaults).
    ``chunking``: how long videos are cut (None: never). ``auto_batch_size``: each worker
    picks the frames per network run by its device (``PoseModel.default_batch_size``) instead of
    ``video.batch_size``. ``on_start(total)`` and
    ``on_result(outcome)`` are called on the driver, per input, for progress reports.

    Raises :class:`MissingExtraError` without ray, the worker's :class:`PoseError` when the
    model cannot be loaded, :class:`InputError` when the cluster cannot be reached.
    """
    video = video or VideoOptions()
    result = RayBatchResult(skipped=len(plan.done))
    if on_start is not None:
        on_start(len(plan.todo))
    if not plan.todo:
        return result
    cleanup_temporaries(plan.todo)
    jobs = {j.rel.as_posix(): j for j in plan.todo}  # reports name inputs as the plan does
    work = dataclasses.replace(plan, todo=[_absolute(j) for j in plan.todo], done=[])
    units = plan_units(work, video, chunking)
    pool = _PoolSpec(_absolute_model(estimator_options or {}), num_workers, video, auto_batch_size,
                     chunking.min_similarity if chunking is not None else ChunkConfig.min_similarity)
    try:
        with _quiet_loggers(), ray_session(address, num_cpus) as ray:
            _execute(ray, units, jobs, pool, result, on_result)
    finally:
        cleanup_temporaries(plan.todo)  # part files, and temporary files of killed workers
    return result


def _setup_error(kind: str, text: str) -> PoseError:
    """A worker's model-loading error, rebuilt on the driver (same class and text)."""
    return error_class(kind)(text)


@dataclass(frozen=True)
class _PoolSpec:
    """What the run's actors and join tasks are given: the estimator's keyword arguments,
    the actors wanted (None: by the cluster), the video options, whether each actor picks
    its batch size by its device, and the similarity at which ids match across cuts."""

    estimator_options: dict
    num_workers: int | None
    video: VideoOptions
    auto_batch_size: bool
    min_similarity: float


def _execute(ray, units: list[Unit], jobs: dict[str, Job], pool: _PoolSpec, result: RayBatchResult,
             on_result: Callable[[JobOutcome], None] | None) -> None:
    """Stream the units through the actor pool, Ray Data's settings changed for the run."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    before = {k: getattr(ctx, k) for k in _DATA_SETTINGS}
    try:
        for k, v in _DATA_SETTINGS.items():
            setattr(ctx, k, v)
        _stream(ray, units, jobs, pool, result, on_result)
    finally:
        for k, v in before.items():
            setattr(ctx, k, v)


def _stream(ray, units: list[Unit], jobs: dict[str, Job], pool: _PoolSpec, result: RayBatchResult,
            on_result: Callable[[JobOutcome], None] | None) -> None:
    """Units through the actor pool; cut videos joined as their ranges arrive; ``result``
    filled and ``on_result`` called per input."""
    from ray.data import ActorPoolStrategy

    workers, resources, opts = _pool_settings(ray, pool.estimator_options, pool.num_workers)
    workers = min(workers, len(units))
    result.workers, result.resources = workers, dict(resources)
    parts_in: dict[str, dict[int, Path]] = {}  # a cut video's part files, by range, as they arrive
    join = ray.remote(num_cpus=0, max_retries=_JOIN_RETRIES)(join_task)
    joins: dict = {}  # ObjectRef -> (job, part files)
    finished: set[str] = set()

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
            except Exception as exc:  # noqa: BLE001 (Ray's task errors: the join's retries are spent)
                outcome = JobOutcome(job, "failed", f"joining its frame ranges failed: {type(exc).__name__}")
            for p in parts:
                with contextlib.suppress(OSError):
                    p.unlink()
            report(outcome)

    seen: set[str] = set()
    items = [{"unit": pickle.dumps(u, protocol=pickle.HIGHEST_PROTOCOL)} for u in units]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(Worker, batch_size=1, batch_format="numpy",
                        compute=ActorPoolStrategy(size=workers),
                        fn_constructor_kwargs={"estimator_options": opts, "video": pool.video,
                                               "auto_batch_size": pool.auto_batch_size}, **resources)
    by_key = {u.key: u for u in units}
    for row in ds.iter_rows():
        answer: UnitOutcome = pickle.loads(row["outcome"])
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
                joins[join.remote(unit.job, parts, pool.video, pool.min_similarity)] = (unit.job, parts)
        collect_joins(0)
    collect_joins(None)
    # units Ray gave up on (none while the pool retries without limit, Ray Data's default)
    for u in units:
        key = u.job.rel.as_posix()
        if key not in finished:
            report(JobOutcome(u.job, "failed", "lost: the worker processing it died on every retry"))
