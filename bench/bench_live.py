"""Live mode on a local stream: FFmpeg sends a 1280x720 H.264 clip as MPEG-TS over TCP on
127.0.0.1 at its own rate (25 frames/s, looping); ``iter_video_poses(realtime=True)`` runs on it.

Measured: processed frames/s, frames dropped, latency from capture (the grabber receiving
the frame) to the parsed result, median / 95th percentile / max over the whole run and in its
first and last 10 s (no growth), against the network time of one 1280x720 frame measured
alone in the same run. Target: median latency <= 2x that network time, and no growth.

The duration is a setting: ``POSECLI_BENCH_LIVE_S`` (default 60 s; 15 s with ``--quick``).
Run alone with ``python -m bench live``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from . import MINI, looping_tcp_stream, median_time, settings

CLIP_WH = (1280, 720)
CLIP_FPS = 25.0
LATENCY_TARGET = 2.0  # median latency / network time of one frame
WINDOW_S = 10.0  # first and last seconds compared


def _duration(report: dict) -> float:
    env = os.environ.get("POSECLI_BENCH_LIVE_S")
    if env:
        return max(5.0, float(env))
    repeat, _ = settings(report)
    return 15.0 if repeat <= 3 else 60.0


def _clip(folder: Path, seconds: float = 8.0) -> Path:
    """An H.264 MPEG-TS clip of a COCO photo sliding sideways, 1280x720 at 25 frames/s."""
    image = cv2.imread(str(MINI / "000000000785.jpg"))
    if image is None:
        raise FileNotFoundError(f"{MINI / '000000000785.jpg'} not found (set POSECLI_SHARED)")
    scale = CLIP_WH[1] / image.shape[0]
    raw = folder / "live.avi"
    writer = cv2.VideoWriter(str(raw), cv2.VideoWriter_fourcc(*"MJPG"), CLIP_FPS, CLIP_WH)
    n = int(seconds * CLIP_FPS)
    for i in range(n):
        dx = (CLIP_WH[0] - image.shape[1] * scale) / 2 + 80 * np.sin(2 * np.pi * i / n)  # loops smoothly
        m = np.float32([[scale, 0, dx], [0, scale, 0]])
        writer.write(cv2.warpAffine(image, m, CLIP_WH, borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    ts = folder / "live.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-c:v", "libx264", "-preset", "veryfast",
                    "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts", str(ts)],
                   check=True, timeout=600)
    return ts


def _stats(values) -> dict:
    v = np.asarray(values, dtype=float)
    if not v.size:
        return {"median_ms": None, "p95_ms": None, "max_ms": None}
    return {"median_ms": round(1000 * float(np.median(v)), 1), "p95_ms": round(1000 * float(np.percentile(v, 95)), 1),
            "max_ms": round(1000 * float(v.max()), 1)}


def live(report: dict) -> dict:
    import posecli

    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (apt-get install -y ffmpeg)")
    repeat, warmup = settings(report)
    duration = _duration(report)
    est = posecli.PoseEstimator(device="cpu")
    with tempfile.TemporaryDirectory(prefix="posecli-bench-live-") as tmp:
        clip = _clip(Path(tmp))
        cap = cv2.VideoCapture(str(clip))
        ok, frame = cap.read()  # a frame of the clip: a real person to parse
        cap.release()
        if not ok:
            raise RuntimeError("cannot read the generated clip back")
        net_s = median_time(lambda: est.maps(frame), repeat=max(repeat, 5), warmup=warmup)
        maps = est.maps(frame)
        parse_s = median_time(lambda: est.parse(maps), repeat=max(repeat, 5), warmup=warmup)
        url, server = looping_tcp_stream(clip)
        try:
            time.sleep(0.5)
            rows = []
            t_start = time.monotonic()
            for result in posecli.iter_video_poses(est, url, realtime=True, reconnect=0):
                rows.append((result.timestamp, result.latency, result.skipped, len(result.frame.people)))
                if result.timestamp >= duration:
                    break
            wall = time.monotonic() - t_start
        finally:
            server.kill()
            server.wait()
    ts = np.array([r[0] for r in rows])
    lat = np.array([r[1] for r in rows])
    first = lat[ts < WINDOW_S]
    last = lat[ts >= ts[-1] - WINDOW_S]
    overall = _stats(lat)
    out = {
        "title": "Live mode: 1280x720 H.264 MPEG-TS over TCP on 127.0.0.1, 25 frames/s, real time",
        "notes": [
            "latency: from the grabber receiving a frame to its parsed, tracked result",
            "network_ms: est.maps() on one 1280x720 frame alone (letterbox + network), same run",
            f"CPU: {os.cpu_count()} cores, load at start {os.getloadavg()[0]:.2f} (shared machine: timings are noisy)",
        ],
        "duration_s": round(float(ts[-1]), 1),
        "frames_processed": len(rows),
        "frames_dropped": int(sum(r[2] for r in rows)),
        "processed_fps": round(len(rows) / wall, 2),
        "source_fps": CLIP_FPS,
        "people_per_frame_median": statistics.median(r[3] for r in rows),
        "network_ms": round(1000 * net_s, 1),
        "parse_ms": round(1000 * parse_s, 2),
        "latency": overall,
        "latency_first_10s": _stats(first),
        "latency_last_10s": _stats(last),
        "median_latency_over_network_time": round(float(np.median(lat)) / net_s, 2),
        "target_median_latency_over_network_time": LATENCY_TARGET,
        "growth_last_over_first_median": round(float(np.median(last) / np.median(first)), 2),
    }
    out["meets_target"] = bool(out["median_latency_over_network_time"] <= LATENCY_TARGET
                               and out["growth_last_over_first_median"] <= 1.25)
    return out


SECTIONS = [("live", live)]
