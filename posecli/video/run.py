"""One video end to end: source, pipeline, result writer and annotated video."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..errors import InputError, OutputError
from ..formats.render import Renderer
from ..formats.writers import ResultWriter
from ..io.video import VideoSink, VideoSource
from .offline import OfflineTracker
from .pipeline import FrameResult, Pipeline
from .smooth import OneEuroConfig
from .track import Tracker, TrackerConfig


@dataclass(frozen=True)
class VideoOptions:
    """What ``posecli video`` does with a clip (everything but the estimator and outputs).

    ``start``/``end``: seconds; ``step``: every step-th frame; ``track``: person ids;
    ``offline``: track looking ahead (:mod:`posecli.video.offline`; files, not live sources);
    ``smooth``: One-Euro settings (None: no smoothing; needs ``track``); offline, any value
    turns on zero-phase smoothing instead (``tracker.smooth_s``).
    """

    fmt: str = "posecli"
    start: float | None = None
    end: float | None = None
    step: int = 1
    track: bool = True
    smooth: OneEuroConfig | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    batch_size: int = 1
    offline: bool = False


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
        tracker = make_tracker(opts.tracker, opts.smooth, opts.offline) if opts.track else None
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


def make_tracker(config: TrackerConfig, smooth: OneEuroConfig | None = None, offline: bool = False):
    """The online :class:`Tracker`, or the look-ahead :class:`OfflineTracker` for files."""
    if offline:
        return OfflineTracker(config, smooth=smooth is not None)
    return Tracker(config, smooth)


def iter_video_poses(estimator, video: str | Path, *, track: bool | str = True,
                     smooth: OneEuroConfig | bool | None = None,
                     start: float | None = None, end: float | None = None, step: int = 1,
                     batch_size: int = 1, render: bool = False) -> Iterator[FrameResult]:
    """People in every frame of a video, in order, with stable ids when ``track`` (True or
    ``"online"``; ``"offline"``: look ahead to join fragments and fill gaps, see
    :mod:`posecli.video.offline`).

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
    if track not in (True, False, None, "online", "offline"):
        raise InputError(f"track={track!r}: expected True, False, 'online' or 'offline'")
    tracker = make_tracker(TrackerConfig(), smooth or None, track == "offline") if track else None
    pipeline = Pipeline(estimator, source, source=str(video), batch_size=batch_size, tracker=tracker,
                        renderer=Renderer() if render else None)
    yield from pipeline
