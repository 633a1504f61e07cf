"""OpenCV's FFmpeg backend against PyAV on live streams served on 127.0.0.1 (how posecli chose).

``python -m bench.stream_backends`` (PyAV must be importable, e.g. ``pip install av`` into a
scratch folder and ``PYTHONPATH=that_folder``). Not part of ``make bench``: posecli does not
depend on PyAV. For each backend:

* MJPEG over HTTP at 30 frames/s (a Python server stamping the frame number into each
  frame): time to open, transport latency (server sending -> frame decoded) median and max;
* H.264 MPEG-TS over TCP from FFmpeg (``-re``): time to open and the backlog the backend
  hands over at once after opening (frames buffered while probing);
* the server killed mid-stream: how long until a read reports the end;
* errors: what each says for a refused connection and an HTTP 404.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench import free_port, looping_tcp_stream

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import HttpFiles, MjpegCamera, mpegts_clip, read_stamp


class OpenCVReader:
    name = "opencv-ffmpeg"

    def __init__(self, url: str, timeout_s: float = 5.0):
        ms = int(timeout_s * 1000)
        self.cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        if not self.cap.isOpened():
            raise RuntimeError("isOpened() is False (no reason given)")

    def read(self):
        ok, image = self.cap.read()
        return image if ok else None

    def close(self):
        self.cap.release()


class PyAVReader:
    name = "pyav"

    def __init__(self, url: str, timeout_s: float = 5.0):
        import av

        self.container = av.open(url, timeout=(timeout_s, timeout_s))
        self.frames = self.container.decode(video=0)

    def read(self):
        try:
            return next(self.frames).to_ndarray(format="bgr24")
        except Exception:  # noqa: BLE001 - StopIteration, av.error.*
            return None

    def close(self):
        self.container.close()


def _mjpeg(reader_cls) -> dict:
    with MjpegCamera(fps=30, size_wh=(640, 480)) as cam:
        t0 = time.monotonic()
        reader = reader_cls(cam.url)
        opened = time.monotonic() - t0
        lat = []
        for _ in range(90):
            image = reader.read()
            now = time.monotonic()
            if image is None:
                break
            lat.append(now - cam.sent[read_stamp(image)])
        reader.close()
    return {"open_ms": round(1000 * opened, 1), "latency_median_ms": round(1000 * float(np.median(lat)), 2),
            "latency_max_ms": round(1000 * float(np.max(lat)), 2), "frames": len(lat)}


def _tcp(reader_cls, clip: Path) -> dict:
    url, server = looping_tcp_stream(clip)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        reader = reader_cls(url)
        opened = time.monotonic() - t0
        backlog, t_prev = 0, time.monotonic()
        for _ in range(60):  # frames handed over at once (< 5 ms apart) right after opening
            if reader.read() is None:
                break
            now = time.monotonic()
            if now - t_prev > 0.005:
                break
            backlog += 1
            t_prev = now
        for _ in range(20):
            reader.read()
        server.kill()
        server.wait()
        t_kill = time.monotonic()
        frames_after = 0
        while reader.read() is not None and frames_after < 1000:
            frames_after += 1
        ended = time.monotonic() - t_kill
        reader.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return {"open_ms": round(1000 * opened, 1), "backlog_frames_after_open": backlog,
            "end_seen_after_kill_ms": round(1000 * ended, 1), "buffered_frames_after_kill": frames_after}


def _errors(reader_cls, base_url: str) -> dict:
    out = {}
    for case, url in (("refused", f"tcp://127.0.0.1:{free_port()}"), ("http_404", f"{base_url}/missing.mp4")):
        try:
            reader_cls(url, timeout_s=2).close()
            out[case] = "opened?!"
        except Exception as exc:  # noqa: BLE001 - whatever each backend raises is the finding
            out[case] = f"{type(exc).__name__}: {exc}"[:120]
    return out


def main() -> None:
    readers = [OpenCVReader]
    try:
        import av

        readers.append(PyAVReader)
        versions = {"opencv": cv2.__version__, "pyav": av.__version__}
    except ImportError:
        versions = {"opencv": cv2.__version__, "pyav": "not installed"}
    results = {"versions": versions}
    with tempfile.TemporaryDirectory() as tmp:
        clip = mpegts_clip(Path(tmp) / "clip.ts", 100, size_wh=(640, 480), fps=25.0)
        with HttpFiles(Path(tmp)) as files:
            for cls in readers:
                results[cls.name] = {"mjpeg_http": _mjpeg(cls), "mpegts_tcp": _tcp(cls, clip),
                                     "errors": _errors(cls, files.url)}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
