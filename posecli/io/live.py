"""Live frames: cameras and stream URLs (with reconnection), and a grabber that keeps only
the newest frame so that a slow consumer never makes a live source queue up.

:class:`LiveCapture` reads a camera or a stream through OpenCV's FFmpeg (streams) or V4L2
(cameras) backend. Iterating yields ``(index, timestamp_s, image, meta)``: ``index`` counts
every frame received (across reconnections), ``timestamp_s`` is the capture time since the
first frame, ``meta`` holds ``captured`` (``time.monotonic()``) and ``capture_time`` (Unix
seconds). When the source fails it is reopened up to ``reconnect`` times, waiting 0.5, 1,
2, 4... s (at most 8 s) between attempts; each attempt is announced through ``on_note``.

:class:`LatestFrameFeed` iterates any source in its own thread and keeps only the newest
frame; :meth:`LatestFrameFeed.take` hands it over with ``meta["skipped"]``, the number of
frames that arrived since the previous one taken and were dropped.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..errors import InputError
from .source_spec import SourceSpec

BACKOFF_S = 0.5  # first wait before reconnecting; doubles each attempt
MAX_BACKOFF_S = 8.0
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}


class LiveCapture:
    """A camera or a stream, opened at construction (:class:`InputError` when it cannot be).

    ``reconnect``: attempts to reopen the source after it fails or ends (0: stop at once).
    ``timeout_s``: the longest opening or reading one frame may take. ``on_note``: called
    with a line of text at each reconnection attempt (from the reading thread).
    After iteration, ``stopped_early``/``error`` say why the source ended (it is live: it
    never ends on its own), ``reconnects`` how many times it came back.
    """

    live = True

    def __init__(self, spec: SourceSpec, *, reconnect: int = 3, timeout_s: float = 10.0,
                 on_note: Callable[[str], None] | None = None):
        if reconnect < 0:
            raise InputError(f"reconnect must be >= 0, got {reconnect}")
        if not np.isfinite(timeout_s) or timeout_s <= 0:
            raise InputError(f"timeout_s must be a positive number of seconds, got {timeout_s}")
        self.spec = spec
        self.name = spec.text
        self.reconnect = int(reconnect)
        self.timeout_s = float(timeout_s)
        self.on_note = on_note
        self.stopped_early = False
        self.error: str | None = None
        self.reconnects = 0
        self.frames_read = 0
        self._stop = threading.Event()
        self._cap, first = self._open()
        self._first: np.ndarray | None = first
        self.size_wh = (int(first.shape[1]), int(first.shape[0]))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and 0 < fps <= 1000 else 0.0
        count = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        # A URL of a file (an mp4 on a web server) has a length: read it like a file, every
        # frame, no reconnection (it would start again from the beginning).
        self.frame_count = int(count) if spec.kind == "stream" and 0 < count < 1e9 else 0
        self.live = not self.frame_count
        self.expected_frames = self.frame_count or None

    def info(self) -> dict:
        info = {"file": self.name, "kind": self.spec.kind, "width": self.size_wh[0], "height": self.size_wh[1],
                "fps": round(self.fps, 4)}
        if self.frame_count:
            info["frame_count"] = self.frame_count
        return info

    def stop(self) -> None:
        """Make a reconnection wait end now (safe from any thread)."""
        self._stop.set()

    def release(self) -> None:
        """Close the connection opened by the constructor if iteration never took it over."""
        self._stop.set()
        cap, self._cap, self._first = self._cap, None, None
        if cap is not None:
            cap.release()

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray, dict]]:
        self.stopped_early, self.error = False, None
        cap, image = self._cap, self._first
        self._first = None
        if cap is None:  # a second iteration opens the source again
            cap, image = self._open()
        self._cap = None
        t0: float | None = None
        index = 0
        try:
            while True:
                if image is None:
                    ok, image = cap.read()
                    if not ok or image is None or image.size == 0:
                        cap.release()
                        if not self.live:  # a file behind a URL: its end, or where it broke off
                            cap = None
                            if index < self.frame_count:
                                self.stopped_early = True
                                self.error = f"stopped at frame {index} of {self.frame_count}: the rest could not be read"
                            return
                        cap = self._come_back(index)
                        if cap is None:
                            return
                        continue
                now = time.monotonic()
                if t0 is None:
                    t0 = now
                meta = {"captured": now, "capture_time": time.time()}
                self.frames_read += 1
                yield index, now - t0, image, meta
                index += 1
                image = None
        finally:
            if cap is not None:
                cap.release()

    # -- opening and reopening --------------------------------------------------------------------
    def _come_back(self, frames: int):
        """Reopen after a failure, with backoff; None (and ``error`` set) when it does not come back."""
        what = "camera" if self.spec.kind == "camera" else "stream"
        reason = "no more frames"
        for attempt in range(1, self.reconnect + 1):
            delay = min(BACKOFF_S * 2 ** (attempt - 1), MAX_BACKOFF_S)
            self._note(f"{self.name}: {what} lost after {frames} frames ({reason}); "
                       f"reconnecting in {delay:g} s (attempt {attempt} of {self.reconnect})")
            if self._stop.wait(delay):
                return None
            try:
                cap, first = self._open()
            except InputError as exc:
                reason = exc.message
                continue
            self.reconnects += 1
            self._note(f"{self.name}: reconnected")
            return _Primed(cap, first)
        if self._stop.is_set():
            return None
        self.stopped_early = True
        tries = f" and {self.reconnect} reconnection attempts failed" if self.reconnect else ""
        self.error = f"the {what} ended after {frames} frames ({reason}){tries}"
        return None

    def _note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)

    def _open(self):
        """``(capture, first image)``; :class:`InputError` saying why when it fails."""
        spec = self.spec
        if spec.kind == "camera":
            cap = _open_camera(spec)
        else:
            ms = int(self.timeout_s * 1000)
            with _opencv_quiet():
                cap = cv2.VideoCapture(spec.url, cv2.CAP_FFMPEG,
                                       [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
            if not cap.isOpened():
                cap.release()
                raise InputError(explain_stream_failure(spec.url, self.timeout_s), path=spec.text)
        ok, first = cap.read()
        if not ok or first is None or first.size == 0:
            cap.release()
            if spec.kind == "camera":
                raise InputError("the camera opened but gave no frame", path=spec.text)
            raise InputError(f"connected, but no video frame arrived within {self.timeout_s:g} s", path=spec.text)
        return cap, first


@contextlib.contextmanager
def _opencv_quiet():
    """OpenCV's own warnings (a failed open, a read timeout) off stderr: the error says it."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(level)


class _Primed:
    """A reopened capture whose first frame was already read (handed back by the next read)."""

    def __init__(self, cap, first: np.ndarray):
        self._cap = cap
        self._first: np.ndarray | None = first

    def read(self):
        if self._first is not None:
            first, self._first = self._first, None
            return True, first
        return self._cap.read()

    def release(self) -> None:
        self._cap.release()


def _open_camera(spec: SourceSpec):
    cam = spec.camera
    if sys.platform.startswith("linux"):
        device = Path(cam if isinstance(cam, str) else f"/dev/video{cam}")
        if not device.exists():
            raise InputError(f"no such camera ({device} does not exist)", path=spec.text)
        cap = cv2.VideoCapture(str(device), cv2.CAP_V4L2)
    else:
        cap = cv2.VideoCapture(cam if isinstance(cam, int) else str(cam))
    if not cap.isOpened():
        cap.release()
        raise InputError("cannot open the camera (in use by another program, or not a video capture device)",
                         path=spec.text)
    return cap


def explain_stream_failure(url: str, timeout_s: float = 5.0) -> str:
    """Why a stream URL did not open: connection refused, unknown host, HTTP error, or not a stream.

    Asked only after the backend failed (a probe before opening could take the only
    connection a single-client server accepts).
    """
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return "bad port in the URL"
    if scheme == "udp":
        return f"no video arrived within {timeout_s:g} s (is anything sending MPEG-TS to this address?)"
    if port is None:
        return "the URL needs a port (tcp://HOST:PORT)"
    wait = min(timeout_s, 5.0)
    try:
        socket.getaddrinfo(host, port)
    except socket.gaierror:
        return f"cannot resolve host '{host}'"
    try:
        socket.create_connection((host, port), timeout=wait).close()
    except ConnectionRefusedError:
        return f"connection refused (nothing listening on {host}:{port})"
    except TimeoutError:
        return f"no answer from {host}:{port} within {wait:g} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    if scheme in ("http", "https"):
        status = _http_status(parts, port, wait)
        if status is not None and status[0] >= 400:
            return f"HTTP {status[0]} {status[1]}"
    return "not a video stream (connected, but nothing decodable came back)"


def _http_status(parts, port: int, timeout_s: float) -> tuple[int, str] | None:
    conn_cls = http.client.HTTPSConnection if parts.scheme.lower() == "https" else http.client.HTTPConnection
    kwargs = {"context": ssl.create_default_context()} if conn_cls is http.client.HTTPSConnection else {}
    conn = conn_cls(parts.hostname, port, timeout=timeout_s, **kwargs)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.reason
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Newest frame only
# ---------------------------------------------------------------------------------------------
END = object()  # take(): the source has no more frames


class LatestFrameFeed:
    """Iterate ``source`` in a thread, keeping only the newest frame.

    ``pace``: release frames at the source's own rate (by their timestamps), to run a
    file or a folder as if it were a camera. Frames get ``meta["captured"]`` (monotonic
    seconds, when the frame was received or released) and ``meta["capture_time"]`` (Unix
    seconds) unless the source set them. ``received``/``taken``: frame counts so far.
    """

    def __init__(self, source, *, pace: bool = False):
        self.source = source
        self.pace = bool(pace)
        self.received = 0
        self.taken = 0
        self._cond = threading.Condition()
        self._latest: tuple | None = None
        self._taken_seq = 0
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Frames received and never taken (so far)."""
        return self.received - self.taken

    def start(self) -> LatestFrameFeed:
        if self._thread is None:
            self._thread = threading.Thread(target=self._grab, name="posecli-grab", daemon=True)
            self._thread.start()
        return self

    def take(self, timeout: float | None = None):
        """The newest frame not taken yet, as ``(index, timestamp_s, image, meta)`` with
        ``meta["skipped"]``; None when none arrived within ``timeout``; :data:`END` when the
        source is finished (its exception, if it failed, is raised here)."""
        with self._cond:
            self._cond.wait_for(lambda: self._done or (self._latest is not None and self._latest[0] > self._taken_seq),
                                timeout)
            if self._latest is not None and self._latest[0] > self._taken_seq:
                seq, index, ts, image, meta = self._latest
                self._latest = None  # the image is the caller's now
                meta["skipped"] = seq - self._taken_seq - 1
                self._taken_seq = seq
                self.taken += 1
                return index, ts, image, meta
            if self._done:
                if self._error is not None:
                    raise self._error
                return END
            return None

    def __iter__(self):
        self.start()
        try:
            while True:
                item = self.take(0.1)
                if item is END:
                    return
                if item is not None:
                    yield item
        finally:
            self.close()

    def close(self, wait_s: float = 2.0) -> None:
        """Stop reading (the thread ends after the read in progress)."""
        self._stop.set()
        stop = getattr(self.source, "stop", None)
        if stop is not None:
            stop()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait_s)

    def _grab(self) -> None:
        it = iter(self.source)
        origin: float | None = None  # monotonic time of timestamp 0 when pacing
        try:
            for item in it:
                if self._stop.is_set():
                    return
                index, ts, image = item[:3]
                meta = dict(item[3]) if len(item) > 3 else {}
                if self.pace:
                    now = time.monotonic()
                    if origin is None:
                        origin = now - ts
                    if self._stop.wait(max(0.0, origin + ts - now)):
                        return
                if "captured" not in meta:
                    meta["captured"] = time.monotonic()
                    meta["capture_time"] = time.time()
                with self._cond:
                    self.received += 1
                    self._latest = (self.received, index, ts, image, meta)
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer by take()
            self._error = exc
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            with self._cond:
                self._done = True
                self._cond.notify_all()
