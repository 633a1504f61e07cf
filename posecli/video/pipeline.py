"""Video through the estimator with the stages overlapping: decode | network | parse+track+draw.

Three worker threads joined by bounded queues (numpy, OpenCV and onnxruntime release the
GIL, so the stages really run side by side)::

    decode (VideoSource) -> [batches] -> network (maps) -> [maps] -> parse, track, render -> caller

The network stage submits each batch and passes on a handle; the parse stage waits for
the handles in order. On a runtime that runs several batches at once (OpenVINO's
THROUGHPUT streams) up to :data:`IN_FLIGHT` batches are then in the network together.

The caller iterates :class:`Pipeline` for :class:`FrameResult` in frame order and writes
them; memory is bounded by the queue sizes, not by the video's length.

Real time (``realtime=True``, for live sources): a grabber thread keeps only the newest
frame (:class:`~posecli.io.live.LatestFrameFeed`) and the network takes it whenever it is
free, one frame at a time, so frames that arrive while it is busy are dropped instead of
queued and the latency from capture to result stays bounded however long it runs. Leaving the loop
early (an exception, Ctrl-C, ``break``) stops the workers and releases the video.

:class:`VideoRun` is the whole job of ``posecli video`` (and of each video in a batch):
source, pipeline, JSON writer and annotated video, closed properly however it ends.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..formats.render import Renderer
from ..io.streams import held_stop
from ..types import Frame
from .track import Tracker

_POLL_S = 0.1  # how often blocked workers look at the stop flag
_JOIN_S = 5.0  # how long closing waits for a worker (one network run) to finish
#: Batches submitted ahead when the runtime runs several at once: at least 4, and one per
#: core, since OpenVINO's THROUGHPUT hint may run a stream per core (a submission waits while
#: all of its requests are busy, so more handles than that only wait in the queue).
IN_FLIGHT = max(4, os.cpu_count() or 1)


@dataclass
class FrameResult:
    """One processed frame: the decoded ``image`` (H, W, 3) BGR, its people, the drawing."""

    index: int
    timestamp: float
    image: np.ndarray
    frame: Frame
    rendered: np.ndarray | None = None
    network: str | None = None  # sparse runs: "whole", "crops" or "none" (see posecli.video.sparse)

    @property
    def capture_time(self) -> float | None:
        """Unix seconds when a live frame was captured (None for files read frame by frame)."""
        return self.frame.extra.get("capture_time")

    @property
    def skipped(self) -> int:
        """Frames of the source dropped just before this one (real-time mode)."""
        return int(self.frame.extra.get("skipped", 0))

    @property
    def latency(self) -> float | None:
        """Seconds from capture to this result (None for files read frame by frame)."""
        return self.frame.extra.get("latency")


class _End:
    """Queue marker: no more items (``error`` set when a worker failed)."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


class Pipeline:
    """Iterate to get :class:`FrameResult` in order for ``frames`` of ``(index, timestamp, image)``.

    ``batch_size``: frames per network run (frames of one size; more uses more memory and
    helps on GPUs). ``tracker``: gives person ids (None: no ids): a :class:`Tracker` or an
    :class:`~posecli.video.offline.OfflineTracker` (which holds frames back to look ahead;
    ``push(frame, image)`` returns the frames ready, ``flush()`` the rest). ``renderer``: draws
    people on each frame (None: no drawing). ``queue_size``: batches buffered per stage.
    ``realtime``: newest frame only, one at a time (see the module docstring); a source
    that is not ``live`` (a file, a folder) is then played at its own frame rate.
    ``expected_frames``: how many frames will be processed, where fewer than the source holds
    (a frame limit); None: the source's own ``expected_frames``.
    Frames may carry a fourth item, a dict: ``source`` (the frame's own file),
    ``captured`` (monotonic seconds) and ``capture_time`` (Unix seconds) end up in
    ``Frame.extra`` with ``skipped`` and ``latency``.
    ``sparse``: a :class:`~posecli.video.sparse.SparseConfig` runs the network on whole
    frames only now and then (:mod:`posecli.video.sparse`); None: when the estimator's mode
    is ``fastest``. ``sparse_counts`` then says how many frames ran it how.
    """

    def __init__(self, estimator, frames: Iterable[tuple], *, source: str = "",
                 batch_size: int = 1, tracker: Tracker | None = None, renderer: Renderer | None = None,
                 queue_size: int = 2, realtime: bool = False, expected_frames: int | None = None,
                 sparse=None):
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        self.estimator = estimator
        self.frames = frames
        self.source = source
        self.realtime = bool(realtime)
        self.feed = None
        if self.realtime:  # nothing may wait in a queue: one frame in each stage at most
            from ..io.live import LatestFrameFeed

            self.feed = LatestFrameFeed(frames, pace=not getattr(frames, "live", False))
            batch_size, queue_size = 1, 1
        self.batch_size = int(batch_size)
        # how many frames will be processed, when known: the runtime may prepare for them
        self.expected_frames = expected_frames if expected_frames is not None else getattr(frames, "expected_frames", None)
        self.tracker = tracker
        self.renderer = renderer
        self.sparse = _sparse_runner(estimator, sparse, None if self.realtime else self.expected_frames)
        self._stop = threading.Event()
        self._batches: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        # With a runtime that runs several batches at once (OpenVINO), the maps queue holds
        # submitted batches: its size is how many the network has in flight.
        in_flight = IN_FLIGHT if getattr(getattr(estimator, "model", None), "concurrent", False) else 1
        self._maps: queue.Queue = queue.Queue(maxsize=max(1, queue_size, in_flight))
        self._results: queue.Queue = queue.Queue(maxsize=max(2, queue_size * self.batch_size))
        self._threads: list[threading.Thread] = []
        self._started = False
        # A deadline (monotonic seconds) for a source that may stall: set it, and iteration
        # ends once it has passed with every frame read so far handed over (``gave_up``).
        self.give_up_at: float | None = None
        self.gave_up = False
        self._frames_in = 0  # frames taken from the source into the stages
        self._frames_out = 0  # results handed to the caller

    # -- the caller's side ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise RuntimeError("a Pipeline can be iterated once")
        self._started = True
        try:
            # started inside the try: an interrupt between two starts still stops the rest
            stages = [("decode", self._decode), ("network", self._network), ("parse", self._parse)]
            if self.feed is not None:
                self.feed.start()
                stages = stages[1:]
            for name, target in stages:
                t = threading.Thread(target=target, name=f"posecli-{name}", daemon=True)
                self._threads.append(t)
                t.start()
            while True:
                item = self._next_result()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                self._frames_out += 1
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        """Ask the workers to stop and wait briefly for them (idempotent)."""
        self._stop.set()
        if self.feed is not None:
            self.feed.close()
        for t in self._threads:
            if t is not threading.current_thread() and t.ident is not None:  # started
                t.join(_JOIN_S)
        wait_idle = getattr(getattr(self.estimator, "model", None), "wait_idle", None)
        if wait_idle is not None:
            wait_idle()  # batches submitted but not taken: let them finish now, not at exit

    @property
    def sparse_counts(self) -> dict | None:
        """Frames that ran the network on the whole frame, on crops, not at all (sparse runs; else None)."""
        return None if self.sparse is None else dict(self.sparse.counts)

    # -- workers ----------------------------------------------------------------------------------
    def _put(self, q: queue.Queue, item) -> bool:
        """Put, waiting while the queue is full; False when asked to stop."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue):
        """Get, waiting while the queue is empty; an :class:`_End` when asked to stop."""
        while True:
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return _End()

    def _next_result(self):
        """The next result; an :class:`_End` when asked to stop, or when :attr:`give_up_at`
        has passed and nothing read from the source is still in the stages (it stalls)."""
        while True:
            try:
                return self._results.get(timeout=_POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return _End()
                held = held_stop()
                if held is not None:  # Ctrl-C or SIGTERM while the source stalls: stop now
                    raise held
                if (self.give_up_at is not None and time.monotonic() >= self.give_up_at
                        and self._frames_in <= self._frames_out):
                    self.gave_up = True
                    return _End()

    def _decode(self) -> None:
        """Frames -> batches of up to ``batch_size`` frames of one size."""
        it = iter(self.frames)
        try:
            batch: list = []
            for item in it:
                if self._stop.is_set():
                    return
                self._frames_in += 1
                if batch and item[2].shape != batch[0][2].shape:
                    if not self._put(self._batches, batch):
                        return
                    batch = []
                batch.append(item)
                if len(batch) >= self.batch_size:
                    if not self._put(self._batches, batch):
                        return
                    batch = []
            if batch and not self._put(self._batches, batch):
                return
            self._put(self._batches, _End())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._put(self._batches, _End(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # releases the video capture now, not when garbage collected

    def _next_batch(self):
        """The next batch: from the decode queue, or the newest frame of the feed (real time)."""
        if self.feed is None:
            return self._get(self._batches)
        from ..io.live import END

        while not self._stop.is_set():
            item = self.feed.take(_POLL_S)
            if item is END:
                return _End()
            if item is not None:
                self._frames_in += 1
                return [item]
        return _End()

    def _network(self) -> None:
        """Batches -> network runs, submitted (several in flight where the runtime allows;
        per frame, synchronously, when averaging scales)."""
        est = self.estimator
        expected = self.expected_frames
        # an estimator-like object with only maps_batch (a test's stand-in) runs synchronously
        submit = getattr(est, "submit_maps", None) or (lambda images: _ready(est.maps_batch(images)))
        expect = getattr(est, "expect", None)
        try:
            while True:
                batch = self._next_batch()
                if isinstance(batch, _End):
                    self._put(self._maps, batch)
                    return
                images = [item[2] for item in batch]
                if self.sparse is not None:  # frame by frame: each depends on the people before
                    frames = []
                    for item in batch:
                        frame, kind = self.sparse(item[2], item[1])
                        frame.extra["_network"] = kind  # moved onto the FrameResult
                        frames.append(frame)
                    if not self._put(self._maps, (batch, _ready(frames))):
                        return
                    continue
                if expected and expect is not None:  # a video of known length: the runtime may prepare
                    expect(images[0].shape, expected, len(images))
                    expected = None
                if est.scales == (1.0,) and not self.realtime:
                    pending = submit(images)  # the parse stage waits for it, in order
                else:
                    # several scales run frame by frame; in real time one frame is in flight, so
                    # it runs on the network compiled for latency, not the throughput streams
                    pending = _ready([est.maps(image) for image in images])
                if not self._put(self._maps, (batch, pending)):
                    return
        except BaseException as exc:  # noqa: BLE001
            self._put(self._maps, _End(exc))

    def _parse(self) -> None:
        """Maps -> people in image pixels -> ids -> drawing, in frame order."""
        est = self.estimator
        try:
            while True:
                item = self._get(self._maps)
                if isinstance(item, _End):
                    # an offline tracker holds frames back: they come out at the end
                    held = item.error is None and not self._stop.is_set() and self.tracker is not None
                    if held and not self._emit(self.tracker.flush()):
                        return
                    self._put(self._results, item)
                    return
                batch, pending = item
                for item, m in zip(batch, pending()):
                    index, ts, image = item[:3]
                    meta = item[3] if len(item) > 3 else {}
                    name = meta.get("source", self.source)
                    if isinstance(m, Frame):  # a sparse run's frame, people already in pixels
                        frame = m
                        frame.source, frame.index, frame.timestamp = name, index, ts
                    else:
                        frame = est.parse(m, source=name, index=index, timestamp=ts, image=image)
                    if "captured" in meta:  # a live frame: when captured, frames dropped before it
                        frame.extra.update(capture_time=meta["capture_time"], skipped=int(meta.get("skipped", 0)),
                                           _captured=meta["captured"])
                    ready = [(frame, image)] if self.tracker is None else self.tracker.push(frame, image)
                    if not self._emit(ready):
                        return
        except BaseException as exc:  # noqa: BLE001
            self._put(self._results, _End(exc))

    def _emit(self, ready) -> bool:
        """Draw and hand over ``(frame, image)`` pairs; False when asked to stop."""
        for frame, image in ready:
            drawn = self.renderer(image, frame.people) if self.renderer is not None else None
            network = frame.extra.pop("_network", None)
            captured = frame.extra.pop("_captured", None)
            if captured is not None:  # capture to result, drawing included
                frame.extra["latency"] = time.monotonic() - captured
            if not self._put(self._results, FrameResult(frame.index, frame.timestamp, image, frame, drawn, network)):
                return False
        return True

def _sparse_runner(estimator, sparse, expected_frames: int | None):
    """The :class:`~posecli.video.sparse.SparseRunner` of a sparse run, else None."""
    from ..inference.modes import MODES

    if sparse is None:
        mode = MODES.get(getattr(estimator, "mode", None))
        sparse = mode is not None and mode.sparse
    if sparse is False:
        return None
    from .sparse import SparseConfig, runner_for

    return runner_for(estimator, sparse if isinstance(sparse, SparseConfig) else None, expected_frames)


def _ready(value):
    """A handle like :meth:`PoseEstimator.submit_maps`'s for a result already computed."""
    return lambda: value
