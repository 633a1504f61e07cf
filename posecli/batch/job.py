"""A folder job as ``posecli batch`` runs it: every image and video under a folder, one result
each, on this process or on Ray; checked as a whole when made, run by :func:`run_batch`.

    job = BatchJob(Path("photos"), Path("poses"), video=VideoOptions(track=True))
    summary = run_batch(job)          # processed, warned, failed (and the plan)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ConfigError, MissingExtraError, PoseError
from ..formats.layouts import DEFAULT_LAYOUT
from ..inference.options import EstimatorOptions
from ..io.atomic import check_writable
from ..video.run import VideoOptions
from .local import BatchPlan, describe_failure, plan_batch, run_job
from .ray.chunking import JobOutcome

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchJob:
    """``directory`` in, ``out`` the folder of results mirroring it (see
    :func:`~posecli.batch.local.plan_batch` for ``recursive``, ``render``, ``overwrite``).
    ``video``: how videos run (its format is ``fmt``'s; ``batch_size`` None: by device).
    ``engine``: ``local`` or ``ray`` (``address``: the cluster, ``workers``: model workers).
    ``maps_dir``: also save each input's maps (local only: they are large). ``layout``: the
    keypoint order of the openpose format; ``angles``: angle rows in the csv format;
    ``render_dir``: annotated outputs mirrored under this folder instead of beside the results.
    ``video_mode``: the mode videos run in (the same model; None: the estimator's own)."""

    directory: Path
    out: Path
    estimator: EstimatorOptions = field(default_factory=EstimatorOptions)
    video: VideoOptions = field(default_factory=VideoOptions)
    recursive: bool = False
    render: bool = False
    overwrite: bool = False
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    maps_dir: Path | None = None
    layout: str = DEFAULT_LAYOUT
    angles: bool = False
    render_dir: Path | None = None
    video_mode: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"engine={self.engine!r}: use one of {', '.join(ENGINES)}", param="engine")
        if self.engine == "local" and (self.address is not None or self.workers is not None):
            raise ConfigError("address and workers go with engine='ray'", param=("address", "workers"))
        if self.engine == "ray" and self.maps_dir is not None:
            raise ConfigError("maps_dir goes with engine='local' (maps are large: write them where they are made)",
                              param="maps_dir")
        if self.engine == "ray" and self.video.offline:
            raise ConfigError("offline tracking goes with engine='local'", param="offline")
        if self.maps_dir is not None and not self.estimator.keep_maps:  # the maps are kept to be written
            object.__setattr__(self, "estimator", replace(self.estimator, keep_maps=True))

    def plan(self) -> BatchPlan:
        """The inputs, those already done and where the results go; the outputs checked
        writable now when there is work (:class:`~posecli.errors.OutputError`)."""
        plan = plan_batch(self.directory, self.out, recursive=self.recursive, fmt=self.video.fmt,
                          render=self.render, overwrite=self.overwrite, layout=self.layout, angles=self.angles,
                          render_dir=self.render_dir)
        if plan.todo:
            check_writable(self.out, is_dir=True)  # before any work, not once per input
            if self.maps_dir is not None:
                check_writable(self.maps_dir, is_dir=True)
            if self.render and self.render_dir is not None:
                check_writable(self.render_dir, is_dir=True)
        return plan


@dataclass
class BatchSummary:
    """What a batch did: inputs processed; ``(path, problem)`` of those that stopped early
    (``warned``) and of those that failed, planning included (``failed``)."""

    plan: BatchPlan
    processed: int = 0
    warned: list = field(default_factory=list)
    failed: list = field(default_factory=list)


class BatchReport:
    """What :func:`run_batch` tells its caller; every method may be left as it is.

    ``planned(plan)`` first; ``started(estimator)`` when the model is loaded here (local);
    per input ``input_started(job)``, for a video ``frames_expected(total)`` and
    ``frames(n)`` (it may raise to stop), ``input_finished(job)``; ``outcome(outcome)``
    (done or failed, see :class:`~posecli.batch.ray.chunking.JobOutcome`); ``check()``
    between inputs may raise to stop (finished inputs keep their results).
    """

    def planned(self, plan: BatchPlan) -> None:
        pass

    def started(self, estimator) -> None:
        pass

    def input_started(self, job) -> None:
        pass

    def frames_expected(self, total: int | None) -> None:
        pass

    def frames(self, n: int) -> None:
        pass

    def input_finished(self, job) -> None:
        pass

    def outcome(self, outcome: JobOutcome) -> None:
        pass

    def check(self) -> None:
        pass


def run_batch(job: BatchJob, report: BatchReport | None = None) -> BatchSummary:
    """Plan ``job`` and run what is to do on its engine; inputs that fail are reported and
    listed, the rest is processed."""
    report = report or BatchReport()
    if job.engine == "ray":
        from .ray.driver import import_ray

        try:
            import_ray()
        except MissingExtraError as exc:
            raise MissingExtraError(exc.module, exc.extra, "engine='ray'") from None
    plan = job.plan()
    report.planned(plan)
    summary = BatchSummary(plan, failed=list(plan.failed))
    if not plan.todo:
        return summary
    run = _run_on_ray if job.engine == "ray" else _run_here
    run(job, plan, report, summary)
    return summary


def _count(summary: BatchSummary, outcome: JobOutcome, report: BatchReport) -> None:
    if outcome.status == "failed":
        summary.failed.append((outcome.job.input, outcome.problem or "failed"))
    else:
        summary.processed += 1
        if outcome.warning:
            summary.warned.append((outcome.job.input, outcome.warning))
    report.outcome(outcome)


def _run_here(job: BatchJob, plan: BatchPlan, report: BatchReport, summary: BatchSummary) -> None:
    """The local engine: one estimator in this process, the next photo decoding meanwhile."""
    from .prefetch import Prefetch

    est = job.estimator.build()
    video = job.video if job.video.batch_size else replace(job.video, batch_size=est.model.default_batch_size)
    video_est = _video_estimator(job, plan, est)
    report.started(est)
    ahead = Prefetch(est, plan.todo).start()  # the next photo decodes while this one runs
    try:
        for item in plan.todo:
            report.check()
            report.input_started(item)
            try:
                result = run_job(video_est if item.kind == "video" else est, item, video=video, decoded=ahead.take(item), maps_dir=job.maps_dir,
                                 progress=report.frames if item.kind == "video" else None,
                                 on_start=report.frames_expected if item.kind == "video" else None)
                outcome = JobOutcome(item, "done", frames=result.frames, people=result.people,
                                     warning=result.warning, note=result.note)
            except (PoseError, OSError, ValueError, RuntimeError) as exc:  # cv2.error is an Exception too
                outcome = JobOutcome(item, "failed", problem=describe_failure(exc, item.input))
            finally:
                report.input_finished(item)
            _count(summary, outcome, report)
    finally:
        ahead.close()


def _video_estimator(job: BatchJob, plan: BatchPlan, est):
    """The estimator for the plan's videos: ``est``'s model (loaded once) in ``job.video_mode``;
    ``est`` itself when that is its own mode or there are no videos."""
    if job.video_mode in (None, est.mode) or not any(item.kind == "video" for item in plan.todo):
        return est
    from ..inference.estimator import PoseEstimator

    kwargs = replace(job.estimator, mode=job.video_mode).kwargs()
    kwargs.pop("model")
    return PoseEstimator(est.model, **kwargs)


def _run_on_ray(job: BatchJob, plan: BatchPlan, report: BatchReport, summary: BatchSummary) -> None:
    """The Ray engine: the plan's inputs on a pool of workers; each reported as it finishes."""
    from .ray.driver import run_batch_ray

    video = replace(job.video, batch_size=job.video.batch_size or 1)
    result = run_batch_ray(plan, job.estimator.kwargs(), address=job.address, num_workers=job.workers, video=video,
                           auto_batch_size=job.video.batch_size is None, on_result=report.outcome)
    summary.processed = result.processed
    summary.warned = list(result.warned)
    summary.failed += result.failed
