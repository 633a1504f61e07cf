"""One video end to end: source (file, camera, stream, frames), pipeline, result writer, annotated video."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputError, OutputError
from ..formats.maps import MapsWriter
from ..formats.records import source_stem
from ..formats.render import Renderer
from ..formats.trc import TrcWriter
from ..formats.writers import ResultWriter
from ..io.source_spec import SourceSpec, parse_source
from ..io.sources import check_selection, open_source
from ..io.video import VideoSource, decode_threads_for
from ..io.video_sink import VideoSink
from .follow import Follow, parse_follow
from .offline import OfflineTracker
from .pipeline import FrameResult, Pipeline
from .smooth import OneEuroConfig
from .track import Tracker, TrackerConfig

# A live source that stalls still ends at ``duration``: this many seconds after it (results
# still in the stages are waited for), the run stops. No frame for STALLED_S seconds by
# then: the JSON says "stopped": "stalled" (with "stalled_s"), not "duration".
DURATION_GRACE_S = 1.0
STALLED_S = 2.0


@dataclass(frozen=True)
class VideoOptions:
    """What ``posecli video`` does with a clip (everything but the estimator and outputs).

    ``start``/``end``: seconds; ``step``: every step-th frame; ``track``: person ids;
    ``offline``: track looking ahead (:mod:`posecli.video.offline`; files, not live sources);
    ``smooth``: One-Euro settings (True: the defaults; None: no smoothing; needs ``track``);
    offline, any value turns on zero-phase smoothing instead (``tracker.smooth_s``).
    ``follow``: keep one person (``largest``, ``center`` or a track id; needs ``track``).
    ``renderer``: how the annotated video is drawn (None: the default :class:`Renderer`).
    ``audio``: copy the clip's sound into the annotated video when it covers the whole clip
    at its own frame rate (no ``start``/``end``/``step``).
    ``realtime``: newest frame only (None: on for cameras and streams, off for files and
    folders). ``fps``: frame rate of a folder of frames. ``duration``: stop after this
    many seconds of the source's time (wall time for live sources, which end then even when
    they stall: ``stopped`` is then ``"stalled"``); ``max_frames``: after
    this many processed frames. ``reconnect``/``timeout_s``: for live sources.
    """

    fmt: str = "posecli"
    layout: str = "coco18"  # the openpose format's keypoint order (posecli.formats.layouts)
    angles: bool = False  # the csv format's angle rows (posecli.angles)
    start: float | None = None
    end: float | None = None
    step: int = 1
    track: bool = True
    smooth: OneEuroConfig | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    batch_size: int | None = 1  # None: the model's default for its device
    follow: str | int | None = None
    renderer: Renderer | None = None
    audio: bool = True
    realtime: bool | None = None
    fps: float | None = None
    duration: float | None = None
    max_frames: int | None = None
    reconnect: int = 3
    timeout_s: float = 10.0
    offline: bool = False

    def __post_init__(self) -> None:
        # The rules that combine settings, here once: VideoRun and iter_video_poses rely on them.
        if self.smooth is True:
            object.__setattr__(self, "smooth", OneEuroConfig())
        elif self.smooth is False:
            object.__setattr__(self, "smooth", None)
        if self.follow is not None:
            object.__setattr__(self, "follow", parse_follow(self.follow))
        if self.smooth is not None and not self.track:
            raise ConfigError("smooth=True follows tracked people: drop track=False", param="smooth")
        if self.follow is not None and not self.track:
            raise ConfigError(f"follow={self.follow!r} uses tracking: drop track=False", param="follow")
        if not self.track and (self.offline or self.tracker != TrackerConfig()):
            raise ConfigError("track=False turns tracking off: drop offline=True and the tracker settings",
                              param="track")
        if self.end is not None and self.start is not None and self.end <= self.start:
            raise ConfigError(f"end={self.end} is not after start={self.start}", param="end")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"duration must be a positive number of seconds, got {self.duration}", param="duration")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be at least 1, got {self.max_frames}", param="max_frames")

    def check_source(self, spec: SourceSpec) -> None:
        """The rules that need the SOURCE: parts of it and a frame rate (see
        :func:`~posecli.io.sources.check_selection`); looking ahead is for files and folders."""
        check_selection(spec, fps=self.fps, start=self.start, end=self.end, step=self.step)
        if spec.live and self.offline:
            raise ConfigError("offline=True looks ahead, which a camera or stream cannot: use offline=False",
                              param="offline")

    @property
    def whole(self) -> bool:
        """True when no part of the source is selected (no ``start``, ``end`` or ``step``)."""
        return not (self.start or self.end is not None or self.step != 1)

    def make_tracker(self):
        """The tracker these options ask for (None without ``track``), following one person
        when ``follow`` says so."""
        tracker = make_tracker(self.tracker, self.smooth, self.offline) if self.track else None
        return tracker if self.follow is None else Follow(self.follow, tracker)


class VideoRun:
    """One video through the pipeline into a result (file, per-frame folder or stdout) and
    optionally an annotated video.

    Construction checks the video (:class:`InputError`) and opens the outputs
    (:class:`OutputError`) before any work. :meth:`run` processes it; however it ends, the
    outputs are closed: on success marked complete; on an exception (Ctrl-C included) the
    JSON is closed valid and marked ``"complete": false`` and the partial annotated video
    kept when ``keep_partial``, else both are discarded; the exception is re-raised.

    ``out``: a JSON file, a folder (``openpose``: one file per frame) or None (stdout).
    ``maps_dir``: a folder for each frame's maps (:mod:`posecli.formats.maps`; the
    estimator must keep them). ``trc_dir``: a folder for a pixel TRC per tracked person
    (:mod:`posecli.formats.trc`; ``trc_paths`` after the run).
    ``video``: any SOURCE (see :func:`~posecli.io.sources.parse_source`). ``on_note``:
    receives a line at each reconnection of a live source. ``window``: an object whose
    ``show(result)`` returns False to stop (``--show``).
    After :meth:`run`: ``frames_done``, ``complete``, ``stopped_early``/``error`` (a
    truncated video or a lost stream: every frame that came was processed), ``stopped``
    (why a run ended before its source did: duration, max_frames, window), ``dropped``
    (frames skipped in real time), ``unreadable`` (frames of a folder that did not decode),
    ``sparse_counts`` (mode ``fastest``: frames whose network ran on the whole frame, on
    crops, not at all; else None).
    """

    def __init__(self, estimator, video: str | Path | SourceSpec, out: str | Path | None = None, *,
                 options: VideoOptions = VideoOptions(), render: str | Path | None = None,
                 keep_partial: bool = True, maps_dir: str | Path | None = None,
                 on_note: Callable[[str], None] | None = None, window=None, trc_dir: str | Path | None = None):
        if maps_dir is not None and not getattr(estimator, "keep_maps", False):
            raise InputError("maps_dir needs an estimator made with keep_maps=True")
        if trc_dir is not None and not options.track:
            raise ConfigError("trc_dir writes a file per tracked person: drop track=False", param="trc_dir")
        if maps_dir is not None and getattr(estimator, "mode", None) == "fastest":
            raise InputError("maps_dir writes every frame's maps, and mode='fastest' runs the network on "
                             "a few frames only: use mode='fast'", param=("mode", "maps_dir"))
        spec = video if isinstance(video, SourceSpec) else parse_source(video)
        options.check_source(spec)
        self.estimator = estimator
        self.options = options
        self.keep_partial = keep_partial
        self.window = window
        self.source = open_source(spec, fps=options.fps, start=options.start, end=options.end, step=options.step,
                                  reconnect=options.reconnect, timeout_s=options.timeout_s, on_note=on_note)
        tune_decoding(self.source, estimator)
        self.live = bool(getattr(self.source, "live", False))
        self.realtime = self.live if options.realtime is None else bool(options.realtime)
        self.expected = None if self.realtime else self.source.expected_frames
        if self.expected is not None and options.max_frames is not None:
            self.expected = min(self.expected, options.max_frames)
        self.frames_done = 0
        self.complete = False
        self.stopped: str | None = None
        self.dropped = 0
        self.sparse_counts: dict | None = None  # mode fastest: frames by how the network ran
        self.stalled_s = 0.0  # "stalled": seconds without a frame when the duration ran out
        self._closed = False
        per_frame = options.fmt == "openpose"
        if per_frame and out is None:
            self._release_source()
            raise OutputError("fmt='openpose' writes one file per frame: give out=DIRECTORY", param="out")
        header = {"video": self.source.info()}
        if self.live or self.realtime:
            header["realtime"] = self.realtime
        if not options.whole:
            header["selection"] = {"start": options.start, "end": options.end, "step": options.step}
        try:
            self.writer = ResultWriter(options.fmt, out, model=estimator.model.info.name,
                                       skeleton=estimator.skeleton, kind="frames", per_file_dir=per_frame,
                                       source=header, layout=options.layout,
                                       angles=options.angles)
        except BaseException:
            self._release_source()
            raise
        self.sink: VideoSink | None = None
        self.maps: MapsWriter | None = None
        self.trc: TrcWriter | None = None
        self.trc_paths: list[Path] = []
        try:
            if trc_dir is not None:
                self.trc = TrcWriter(trc_dir, source_stem(self.source_name), estimator.skeleton)
            if maps_dir is not None:
                self.maps = MapsWriter(maps_dir, estimator.skeleton)
            if render is not None:
                self.sink = VideoSink(render, self.source.fps / options.step if self.source.fps else 0.0,
                                      self.source.size_wh,
                                      audio_from=self.source.path if options.audio and isinstance(self.source, VideoSource) else None,
                                      audio_aligned=options.whole)
        except BaseException:
            self.writer.discard()
            self._release_source()
            raise

    def _release_source(self) -> None:
        """Close a live source opened by the constructor (a stream holds a connection)."""
        release = getattr(self.source, "release", None)
        if release is not None:
            release()

    @property
    def unreadable(self) -> list:
        """``(path, message)`` of frames of a folder that could not be decoded."""
        return list(getattr(self.source, "unreadable", []))

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
        """What the annotated video is not as asked (codec, sound), or None."""
        return None if self.sink is None else self.sink.note

    def run(self, progress: Callable[[int], None] | None = None) -> VideoRun:
        """Process every frame; ``progress(n)`` is called with the frames just done."""
        opts = self.options
        tracker = opts.make_tracker()
        drawing = self.sink is not None or self.window is not None
        renderer = (opts.renderer or Renderer()) if drawing else None
        pipeline = Pipeline(self.estimator, self.source, source=str(self.source_name),
                            batch_size=opts.batch_size or self.estimator.model.default_batch_size,
                            tracker=tracker, renderer=renderer, realtime=self.realtime,
                            expected_frames=self.expected)
        results = iter(pipeline)
        first_ts: float | None = None
        if pipeline.sparse is not None:
            from .sparse import KINDS

            self.sparse_counts = dict.fromkeys(KINDS, 0)
        last_at = 0.0  # time.monotonic() of the last result
        try:
            for result in results:
                last_at = time.monotonic()
                if first_ts is None:
                    first_ts = result.timestamp
                    if self.live and opts.duration is not None:  # a source that stalls ends at the duration too
                        pipeline.give_up_at = last_at + opts.duration + DURATION_GRACE_S
                if opts.duration is not None and result.timestamp - first_ts >= opts.duration:
                    self.stopped = "duration"
                    break
                if self.maps is not None:
                    self.maps.add(result.frame)
                self.writer.add(result.frame, image_id=result.index)
                self.frames_done += 1  # as the JSON holds it, whatever happens to the video next
                if self.trc is not None:
                    self.trc.add(result.frame)
                if self.sink is not None:
                    self.sink.write(result.rendered)
                self.dropped += result.skipped
                if result.network is not None:
                    self.sparse_counts[result.network] += 1
                if progress is not None:
                    progress(1)
                if self.window is not None and not self.window.show(result):
                    self.stopped = "window closed"
                    break
                if opts.max_frames is not None and self.frames_done >= opts.max_frames:
                    self.stopped = "max_frames"
                    break
        except BaseException as exc:
            results.close()  # stops the workers now, not when the traceback is dropped
            # Stopped by a signal: the partial video is kept, as the JSON is. Failed (a full
            # disk): the video is not complete, and never replaces a previous one.
            self._close(complete=False, keep_video=isinstance(exc, KeyboardInterrupt))
            raise
        results.close()
        if pipeline.gave_up:  # the duration ran out: while frames came, or while the source stalled
            self.stalled_s = time.monotonic() - last_at
            self.stopped = "duration" if self.stalled_s < STALLED_S else "stalled"
        self._close(complete=True)
        return self

    @property
    def source_name(self) -> str:
        """The source as results name it: a file path, a folder, a camera or a URL."""
        return str(getattr(self.source, "path", None) or self.source.name)

    def abort(self) -> None:
        """Close as interrupted unless already closed (for an exception before or after :meth:`run`)."""
        self._close(complete=False)

    def _close(self, complete: bool, keep_video: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        trailer: dict = {"frames_done": self.frames_done}
        if self.realtime:
            trailer["frames_dropped"] = self.dropped
        if self.stopped is not None:
            trailer["stopped"] = self.stopped
        if self.stopped == "stalled":
            trailer["stalled_s"] = round(self.stalled_s, 1)
        if self.source.stopped_early:
            trailer["stream_error" if self.live else "decode_error"] = self.source.error
        if self.unreadable:
            trailer["unreadable"] = [{"file": str(p), "error": m} for p, m in self.unreadable]
        # The JSON first, then the video, renamed into place only when the JSON was written
        # (a full disk never leaves a new video beside an old JSON, nor replaces a good video
        # with a broken one). Every step runs; the first failure is the one reported.
        failures: list[BaseException] = []
        commit_video = complete or (self.keep_partial and keep_video)
        for step in (lambda: self.writer.close(complete=complete, keep_partial=self.keep_partial, trailer=trailer),
                     lambda: self.sink is not None and self.sink.close(commit=commit_video and not failures),
                     lambda: self._close_trc(complete),
                     self._release_source):
            try:
                step()
            except BaseException as exc:  # noqa: BLE001 - raised below, after the other steps
                failures.append(exc)
        if failures:
            raise failures[0]
        self.complete = complete

    def _close_trc(self, complete: bool) -> None:
        """The TRC files, written when the run's results are kept (complete, or partial kept)."""
        if self.trc is not None and (complete or self.keep_partial):
            self.trc_paths = self.trc.close()


def make_tracker(config: TrackerConfig, smooth: OneEuroConfig | None = None, offline: bool = False):
    """The online :class:`Tracker`, or the look-ahead :class:`OfflineTracker` for files."""
    if offline:
        return OfflineTracker(config, smooth=smooth is not None)
    return Tracker(config, smooth)


def iter_video_poses(estimator, video: str | Path | int, *, track: bool | str = True,
                     smooth: OneEuroConfig | bool | None = None, start: float | None = None, end: float | None = None,
                     step: int = 1, batch_size: int = 1, render: bool | Renderer = False,
                     follow: str | int | None = None, realtime: bool | None = None,
                     fps: float | None = None, reconnect: int = 3, timeout_s: float = 10.0,
                     on_note: Callable[[str], None] | None = None) -> Iterator[FrameResult]:
    """People in every frame of a video, in order, with stable ids when ``track`` (True or
    ``"online"``; ``"offline"``: look ahead to join fragments and fill gaps, see
    :mod:`posecli.video.offline`; files only, live sources keep the online tracker).

    ``video``: a file, a camera (``0``, ``"/dev/video0"``), a stream URL (rtsp, rtmp,
    http(s), udp, tcp) or a folder or glob of frames (``fps``: their rate, default 25).
    Yields :class:`FrameResult` (``.frame.people`` in image pixels, ``.index``,
    ``.timestamp`` in seconds, ``.rendered`` when ``render``). The video is decoded, run
    and parsed in overlapping threads; leaving the loop early releases everything.
    ``smooth``: True (default One-Euro settings) or an :class:`OneEuroConfig`. ``render``:
    True or a :class:`Renderer` for ``.rendered``. ``follow``: keep one person (``largest``,
    ``center`` or a track id; needs ``track``).
    ``realtime``: newest frame only, dropping what arrives while the network is busy
    (``.capture_time``, ``.skipped``, ``.latency`` on each result); None: on for cameras
    and streams. ``reconnect``, ``timeout_s``, ``on_note``: see :class:`~posecli.io.live.LiveCapture`.
    After the loop, a truncated video is not an error: the frames that decoded were yielded.
    """
    if track not in (True, False, None, "online", "offline"):
        raise ConfigError(f"track={track!r}: expected True, False, 'online' or 'offline'", param="track")
    options = VideoOptions(track=bool(track), offline=track == "offline", smooth=smooth or None, follow=follow,
                           start=start, end=end, step=step, fps=fps)
    spec = parse_source(video)
    options.check_source(spec)
    source = open_source(spec, fps=fps, start=start, end=end, step=step, reconnect=reconnect, timeout_s=timeout_s,
                         on_note=on_note)
    live = bool(getattr(source, "live", False))
    tracker = options.make_tracker()
    renderer = render if isinstance(render, Renderer) else (Renderer() if render else None)
    name = str(getattr(source, "path", None) or source.name)
    pipeline = Pipeline(estimator, source, source=name, batch_size=batch_size, tracker=tracker,
                        renderer=renderer, realtime=live if realtime is None else realtime)
    try:
        yield from pipeline
    finally:
        release = getattr(source, "release", None)
        if release is not None:
            release()


def tune_decoding(source, estimator) -> None:
    """Decode a video file on one thread when the network runs on the CPU (see
    :func:`~posecli.io.video.decode_threads_for`); other sources are left as they are."""
    if isinstance(source, VideoSource):
        device = getattr(getattr(estimator, "model", None), "device", None)
        source.decode_threads = decode_threads_for(source.size_wh, network_on_cpu=device == "cpu")
