"""Video through the estimator with the stages overlapping: decode | network | parse+track+draw.

Three worker threads joined by bounded queues (numpy, OpenCV and onnxruntime release the
GIL, so the stages really run side by side)::

    decode (VideoSource) -> [batches] -> network (maps) -> [maps] -> parse, track, render -> caller

The caller iterates :class:`Pipeline` for :class:`FrameResult` in frame order and writes
them; memory is bounded by the queue sizes, not by the video's length. Leaving the loop
early (an exception, Ctrl-C, ``break``) stops the workers and releases the video.

:class:`VideoRun` is the whole job of ``posecli video`` (and of each video in a batch):
source, pipeline, JSON writer and annotated video, closed properly however it ends.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ..errors import InputError
from ..formats.render import Renderer
from ..types import Frame
from .track import Tracker

_POLL_S = 0.1  # how often blocked workers look at the stop flag
_JOIN_S = 5.0  # how long closing waits for a worker (one network run) to finish


@dataclass
class FrameResult:
    """One processed frame: the decoded ``image`` (H, W, 3) BGR, its people, the drawing."""

    index: int
    timestamp: float
    image: np.ndarray
    frame: Frame
    rendered: np.ndarray | None = None


class _End:
    """Queue marker: no more items (``error`` set when a worker failed)."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


class Pipeline:
    """Iterate to get :class:`FrameResult` in order for ``frames`` of ``(index, timestamp, image)``.

    ``batch_size``: frames per network run (frames of one size; more uses more memory and
    helps on GPUs). ``tracker``: gives person ids (None: no ids). ``renderer``: draws
    people on each frame (None: no drawing). ``queue_size``: batches buffered per stage.
    """

    def __init__(self, estimator, frames: Iterable[tuple[int, float, np.ndarray]], *, source: str = "",
                 batch_size: int = 1, tracker: Tracker | None = None, renderer: Renderer | None = None,
                 queue_size: int = 2):
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        self.estimator = estimator
        self.frames = frames
        self.source = source
        self.batch_size = int(batch_size)
        self.tracker = tracker
        self.renderer = renderer
        self._stop = threading.Event()
        self._batches: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._maps: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._results: queue.Queue = queue.Queue(maxsize=max(2, queue_size * self.batch_size))
        self._threads: list[threading.Thread] = []
        self._started = False

    # -- the caller's side ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise RuntimeError("a Pipeline can be iterated once")
        self._started = True
        try:
            # started inside the try: an interrupt between two starts still stops the rest
            for name, target in (("decode", self._decode), ("network", self._network), ("parse", self._parse)):
                t = threading.Thread(target=target, name=f"posecli-{name}", daemon=True)
                self._threads.append(t)
                t.start()
            while True:
                item = self._get(self._results)
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        """Ask the workers to stop and wait briefly for them (idempotent)."""
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread() and t.ident is not None:  # started
                t.join(_JOIN_S)

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

    def _decode(self) -> None:
        """Frames -> batches of up to ``batch_size`` frames of one size."""
        it = iter(self.frames)
        try:
            batch: list = []
            for item in it:
                if self._stop.is_set():
                    return
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

    def _network(self) -> None:
        """Batches -> network maps (one run per batch; per frame when averaging scales)."""
        est = self.estimator
        try:
            while True:
                batch = self._get(self._batches)
                if isinstance(batch, _End):
                    self._put(self._maps, batch)
                    return
                images = [image for _, _, image in batch]
                if est.scales == (1.0,):
                    maps = est.maps_batch(images)
                else:
                    maps = [est.maps(image) for image in images]
                if not self._put(self._maps, (batch, maps)):
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
                    self._put(self._results, item)
                    return
                batch, maps = item
                for (index, ts, image), m in zip(batch, maps):
                    frame = est.parse(m, source=self.source, index=index, timestamp=ts, image=image)
                    if self.tracker is not None:
                        frame = self.tracker(frame)
                    drawn = self.renderer(image, frame.people) if self.renderer is not None else None
                    if not self._put(self._results, FrameResult(index, ts, image, frame, drawn)):
                        return
        except BaseException as exc:  # noqa: BLE001
            self._put(self._results, _End(exc))


