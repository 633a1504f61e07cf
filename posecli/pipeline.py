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

import os
import queue
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from .errors import InputError, OutputError
from .render import Renderer
from .smooth import OneEuroConfig
from .sources import VideoSource
from .track import Tracker, TrackerConfig
from .types import Frame
from .writers import ResultWriter

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
                    frame = est.parse(m, source=self.source, index=index, timestamp=ts)
                    if self.tracker is not None:
                        frame = self.tracker(frame)
                    drawn = self.renderer(image, frame.people) if self.renderer is not None else None
                    if not self._put(self._results, FrameResult(index, ts, image, frame, drawn)):
                        return
        except BaseException as exc:  # noqa: BLE001
            self._put(self._results, _End(exc))


# ---------------------------------------------------------------------------------------------
# Annotated video files
# ---------------------------------------------------------------------------------------------
_CONTAINERS = {  # extension -> FOURCC codes to try, best first
    ".mp4": ("mp4v",), ".m4v": ("mp4v",), ".mov": ("mp4v",), ".avi": ("MJPG", "XVID"), ".mkv": ("mp4v", "MJPG"),
}


class VideoSink:
    """An annotated video written beside ``path`` and renamed into place on :meth:`close`.

    Frames must be ``size_wh`` (others are resized). When OpenCV cannot write ``path``'s
    container, MJPG in ``.avi`` is tried and ``note`` says so; when nothing works,
    :class:`OutputError`. ``path`` is the file actually written.
    """

    def __init__(self, path: str | Path, fps: float, size_wh: tuple[int, int]):
        wanted = Path(path)
        ext = wanted.suffix.lower()
        if ext not in _CONTAINERS:
            raise OutputError(f"cannot write video as '{ext or 'no extension'}' (use .mp4 or .avi)", path=wanted)
        if not wanted.parent.is_dir():
            raise OutputError("output directory does not exist", path=wanted.parent)
        self.size_wh = (int(size_wh[0]), int(size_wh[1]))
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.note: str | None = None
        tries = [(code, wanted) for code in _CONTAINERS[ext]]
        if ext != ".avi":
            tries.append(("MJPG", wanted.with_suffix(".avi")))
        for code, target in tries:
            tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*code), self.fps, self.size_wh)
            if writer.isOpened():
                self.path, self._tmp, self._writer, self.fourcc = target, tmp, writer, code
                if target != wanted:
                    self.note = f"OpenCV cannot write {ext} here; wrote {target.name} ({code} in AVI) instead"
                return
            writer.release()
            _unlink(tmp)
        raise OutputError(f"OpenCV cannot write video here (tried {', '.join(c for c, _ in tries)})", path=wanted)

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size_wh:
            image = cv2.resize(image, self.size_wh, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def close(self, commit: bool = True) -> None:
        """Finish the file; rename it into place (``commit``) or delete it."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if commit:
            try:
                os.replace(self._tmp, self.path)
            except OSError as exc:
                _unlink(self._tmp)
                raise OutputError(f"cannot write video ({exc.strerror})", path=self.path) from None
        else:
            _unlink(self._tmp)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# One video, end to end
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoOptions:
    """What ``posecli video`` does with a clip (everything but the estimator and outputs).

    ``start``/``end``: seconds; ``step``: every step-th frame; ``track``: person ids;
    ``smooth``: One-Euro settings (None: no smoothing; needs ``track``).
    """

    fmt: str = "posecli"
    start: float | None = None
    end: float | None = None
    step: int = 1
    track: bool = True
    smooth: OneEuroConfig | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    batch_size: int = 1


class VideoRun:
    """One video through the pipeline into a result (file, per-frame folder or stdout) and
    optionally an annotated video.

    Construction checks the video (:class:`InputError`) and opens the outputs
    (:class:`OutputError`) before any work. :meth:`run` processes it; however it ends, the
    outputs are closed: on success marked complete; on an exception (Ctrl-C included) the
    JSON is closed valid and marked ``"complete": false`` and the partial annotated video
    kept when ``keep_partial``, else both are discarded; the exception is re-raised.

    ``out``: a JSON file, a folder (``openpose``: one file per frame) or None (stdout).
    After :meth:`run`: ``frames_done``, ``complete``, ``stopped_early``/``error`` (a
    truncated video: every decodable frame was processed, then decoding failed).
    """

    def __init__(self, estimator, video: str | Path, out: str | Path | None = None, *,
                 options: VideoOptions = VideoOptions(), render: str | Path | None = None,
                 keep_partial: bool = True):
        if options.smooth is not None and not options.track:
            raise InputError("smoothing follows tracked people: it needs tracking on")
        self.estimator = estimator
        self.options = options
        self.keep_partial = keep_partial
        self.source = VideoSource(video, options.start, options.end, options.step)
        self.expected = self.source.expected_frames
        self.frames_done = 0
        self.complete = False
        self._closed = False
        per_frame = options.fmt == "openpose"
        if per_frame and out is None:
            raise OutputError("--format openpose writes one file per frame: give --out a folder")
        header = {"video": self.source.info()}
        if options.start or options.end is not None or options.step != 1:
            header["selection"] = {"start": options.start, "end": options.end, "step": options.step}
        self.writer = ResultWriter(options.fmt, out, model=estimator.model.info.name, skeleton=estimator.skeleton,
                                   kind="frames", per_file_dir=per_frame, source=header)
        self.sink: VideoSink | None = None
        if render is not None:
            try:
                self.sink = VideoSink(render, self.source.fps / options.step if self.source.fps else 0.0,
                                      self.source.size_wh)
            except BaseException:
                self.writer.discard()
                raise

    @property
    def stopped_early(self) -> bool:
        return self.source.stopped_early

    @property
    def error(self) -> str | None:
        return self.source.error

    @property
    def render_path(self) -> Path | None:
        return None if self.sink is None else self.sink.path

    @property
    def render_note(self) -> str | None:
        return None if self.sink is None else self.sink.note

    def run(self, progress: Callable[[int], None] | None = None) -> "VideoRun":
        """Process every frame; ``progress(n)`` is called with the frames just done."""
        opts = self.options
        tracker = Tracker(opts.tracker, opts.smooth) if opts.track else None
        pipeline = Pipeline(self.estimator, self.source, source=str(self.source.path), batch_size=opts.batch_size,
                            tracker=tracker, renderer=Renderer() if self.sink is not None else None)
        results = iter(pipeline)
        try:
            for result in results:
                self.writer.add(result.frame, image_id=result.index)
                if self.sink is not None:
                    self.sink.write(result.rendered)
                self.frames_done += 1
                if progress is not None:
                    progress(1)
        except BaseException:
            results.close()  # stops the workers now, not when the traceback is dropped
            self._close(complete=False)
            raise
        self._close(complete=True)
        return self

    def abort(self) -> None:
        """Close as interrupted unless already closed (for an exception before or after :meth:`run`)."""
        self._close(complete=False)

    def _close(self, complete: bool) -> None:
        if self._closed:
            return
        self._closed = True
        trailer = {"frames_done": self.frames_done}
        if self.source.stopped_early:
            trailer["decode_error"] = self.source.error
        try:
            if self.sink is not None:
                self.sink.close(commit=complete or self.keep_partial)
        finally:
            self.writer.close(complete=complete, keep_partial=self.keep_partial, trailer=trailer)
        self.complete = complete


def iter_video_poses(estimator, video: str | Path, *, track: bool = True, smooth: OneEuroConfig | bool | None = None,
                     start: float | None = None, end: float | None = None, step: int = 1,
                     batch_size: int = 1, render: bool = False) -> Iterator[FrameResult]:
    """People in every frame of a video, in order, with stable ids when ``track``.

    Yields :class:`FrameResult` (``.frame.people`` in image pixels, ``.index``,
    ``.timestamp`` in seconds, ``.rendered`` when ``render``). The video is decoded, run
    and parsed in overlapping threads; leaving the loop early releases everything.
    ``smooth``: True (default One-Euro settings) or an :class:`OneEuroConfig`.
    After the loop, a truncated video is not an error: the frames that decoded were yielded.
    """
    if smooth is True:
        smooth = OneEuroConfig()
    if smooth and not track:
        raise InputError("smoothing follows tracked people: it needs tracking on")
    source = VideoSource(video, start=start, end=end, step=step)
    tracker = Tracker(TrackerConfig(), smooth or None) if track else None
    pipeline = Pipeline(estimator, source, source=str(video), batch_size=batch_size, tracker=tracker,
                        renderer=Renderer() if render else None)
    yield from pipeline
