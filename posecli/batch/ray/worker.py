"""The Ray engine's worker: an actor that loads the model once and computes units.

A whole input goes through :func:`~posecli.batch.local.run_job` (the result written into
the output folder, atomic, as locally); a frame range goes through :func:`process_range`
and comes back as a part file for :mod:`.stitching`.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import numpy as np

from ...errors import PoseError
from ...io.video import VideoSource, quiet_ffmpeg
from ...video.pipeline import Pipeline
from ...video.run import VideoOptions, tune_decoding
from ...video.track import Tracker
from ..local import JobResult, describe_failure, run_job
from .chunking import JobOutcome, Unit, UnitOutcome
from .stitching import RangeResult, write_part


def process_range(estimator, path: str | Path, first: int, stop: int | None, warm: int = 0,
                  options: VideoOptions | None = None) -> RangeResult:
    """Frames ``[first - warm, stop)`` of a video (``stop`` None: to the end) through the
    estimator with a fresh tracker (when ``options.track``), as :class:`VideoRun` would."""
    options = options or VideoOptions()
    begin = max(0, first - warm)
    source = VideoSource(path, first_frame=begin, stop_frame=stop)
    tune_decoding(source, estimator)
    tracker = Tracker(options.tracker) if options.track else None
    pipeline = Pipeline(estimator, source, source=str(source.path), batch_size=options.batch_size, tracker=tracker)
    frames = [r.frame for r in pipeline]
    warm_done = sum(1 for f in frames if f.index < first)
    return RangeResult(first, frames, warm_done, source.stopped_early, source.error, source.info(),
                       estimator.model.info.name, estimator.skeleton)



class Worker:
    """A Ray Data actor: loads the model once, then computes the units it is handed.

    Batches are ``{"unit": [pickled Unit, ...]}``; answers ``{"outcome": [pickled
    UnitOutcome, ...]}``. An input's failure is an outcome, never an exception, so one bad
    file does not stop the run; a model that cannot be loaded is reported on every unit.
    """

    def __init__(self, estimator_options: dict, video: VideoOptions, auto_batch_size: bool = False):
        from ...inference.estimator import PoseEstimator

        quiet_ffmpeg()
        self.video = video
        self.error: PoseError | None = None
        try:
            self.estimator = PoseEstimator(**estimator_options)
        except PoseError as exc:
            self.estimator = None
            self.error = exc
            return
        if auto_batch_size:  # as the local CLI: the device's default (network.session.DEFAULT_BATCH_SIZE)
            self.video = dataclasses.replace(video, batch_size=self.estimator.model.default_batch_size)

    def __call__(self, batch: dict) -> dict:
        answers = [pickle.dumps(self._one(pickle.loads(blob))) for blob in batch["unit"]]
        return {"outcome": np.array(answers, dtype=object)}

    def _one(self, unit: Unit) -> UnitOutcome:
        if self.error is not None:
            return UnitOutcome(unit.key, error=(type(self.error).__name__, str(self.error)))
        job = unit.job
        try:
            if unit.is_range:
                job.result.parent.mkdir(parents=True, exist_ok=True)
                result = process_range(self.estimator, job.input, unit.first, unit.stop, unit.warm,
                                       self.video)
                write_part(unit.part, result)
                return UnitOutcome(unit.key, part=unit.part)
            res: JobResult = run_job(self.estimator, job, video=self.video)
            return UnitOutcome(unit.key, JobOutcome(job, "done", frames=res.frames, people=res.people,
                                                     warning=res.warning, note=res.note, pid=os.getpid()))
        except (PoseError, OSError, ValueError, RuntimeError) as exc:  # cv2.error is an Exception too
            failed = JobOutcome(job, "failed", describe_failure(exc, job.input), pid=os.getpid())
            return UnitOutcome(unit.key, failed)
