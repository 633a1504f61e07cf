"""Video pipeline bench: network alone vs ``posecli video`` end to end, and memory over a long clip.

Sections (see :mod:`bench`):

* ``pipeline``: on a generated clip (a COCO photo sliding sideways, 480x320), frames per
  second of the network alone (``model.run`` on the clip's letterboxed input, batch 1)
  and of the ``posecli video`` code path end to end (decode, network, parse, track, JSON,
  and with ``--render`` drawing + mp4 encoding) after the model is loaded, run
  interleaved; the ratio end-to-end / network is the issue's target (>= 0.9). One real
  ``python -m posecli video`` subprocess is also timed, start-up and model load included.
* ``pipeline_memory``: a fresh process runs the same code path over a long generated clip
  and reads its RSS after 100 frames and after the last one (target: within 50 MB).

Run alone: ``python -m bench.bench_pipeline [--quick]`` (prints the JSON).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from . import MINI, settings

REPO = Path(__file__).resolve().parents[1]
CLIP_WH = (480, 320)
RATIO_TARGET = 0.9
RSS_GROWTH_TARGET_MB = 50.0
PHOTO = "000000000785.jpg"


def make_clip(path: Path, frames: int, size_wh=CLIP_WH, fps: float = 25.0) -> Path:
    """A clip of a COCO photo sliding sideways (a real person, moving), mp4v."""
    photo = MINI / PHOTO
    image = cv2.imread(str(photo))
    if image is None:
        raise FileNotFoundError(f"{photo} not found (set POSECLI_SHARED)")
    scale = size_wh[0] / image.shape[1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v here")
    try:
        for i in range(frames):
            dx = 30.0 * np.sin(i / 15.0)
            m = np.float32([[scale, 0, dx], [0, scale, 0]])
            writer.write(cv2.warpAffine(image, m, size_wh, borderMode=cv2.BORDER_REPLICATE))
    finally:
        writer.release()
    return path


def _estimator(height: int | None = None):
    from posecli.inference.estimator import PoseEstimator

    return PoseEstimator(None, device="cpu", height=height, runtime="onnxruntime")  # the code path, one runtime


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---------------------------------------------------------------------------------------------
# Throughput
# ---------------------------------------------------------------------------------------------
def pipeline(report: dict) -> dict:
    from posecli.maps import letterbox
    from posecli.network.tensor import to_tensor
    from posecli.video.run import VideoOptions, VideoRun

    repeat, warmup = settings(report)
    quick = repeat <= 2
    frames = 12 if quick else 30
    rounds = max(1, min(repeat, 3))
    est = _estimator()
    info = est.model.info
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", frames)
        first = cv2.VideoCapture(str(clip)).read()[1]
        padded, _ = letterbox(first, est.height, info.stride, info.pad_value)
        x = to_tensor(padded, info)

        def network():
            for _ in range(frames):
                est.model.run(x)

        def end_to_end(render: bool):
            def go():
                job = VideoRun(est, clip, tmp / "poses.json", options=VideoOptions(),
                               render=tmp / "annotated.mp4" if render else None)
                job.run()
            return go

        fns = {"network": network, "end_to_end": end_to_end(False), "end_to_end_render": end_to_end(True)}
        for _ in range(min(warmup, 1)):
            for fn in fns.values():
                fn()
        samples: dict[str, list[float]] = {k: [] for k in fns}
        cpu: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(rounds):  # interleaved, so that load changes hit all three alike
            for name, fn in fns.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                samples[name].append(frames / (time.perf_counter() - t0))
                cpu[name].append((time.process_time() - c0) / frames)
        fps = {k: statistics.median(v) for k, v in samples.items()}
        cpu_ms = {k: 1000 * statistics.median(v) for k, v in cpu.items()}
        cli = _cli_run(clip, tmp / "cli.json", est.height)
    labels = {"network": "network alone (model.run, batch 1)", "end_to_end": "posecli video end to end",
              "end_to_end_render": "posecli video --render end to end"}
    rows = [{"what": labels[k], "fps": round(fps[k], 3), "ratio": round(fps[k] / fps["network"], 3),
             "cpu_ms_per_frame": round(cpu_ms[k], 1), "cpu_ratio": round(cpu_ms["network"] / cpu_ms[k], 3)}
            for k in fns]
    return {
        "title": "Video pipeline: network alone vs posecli video end to end (CPU)",
        "notes": [
            f"Clip: {frames} frames {CLIP_WH[0]}x{CLIP_WH[1]} mp4v ({PHOTO} sliding); model {info.name} "
            f"({info.precision}), input height {est.height}, batch size 1, tracking on, {rounds} interleaved "
            "rounds, median fps. End to end = the `posecli video` code path (VideoRun) after the model "
            f"is loaded. Target ratio >= {RATIO_TARGET}. cpu_ratio = CPU time per frame of the network "
            "alone / of the variant (this process's user+system time): a load-independent estimate of the "
            "ratio on an otherwise idle machine, where the network keeps every core busy.",
            f"Machine load average at the end: {[round(v, 2) for v in os.getloadavg()]}.",
        ],
        "rows": rows,
        "ratio_met": all(r["ratio"] >= RATIO_TARGET for r in rows),
        "cpu_ratio_met": all(r["cpu_ratio"] >= RATIO_TARGET for r in rows),
        "cli_subprocess": cli,
    }


def _cli_run(clip: Path, out: Path, height: int) -> dict:
    """One real ``python -m posecli video`` run: wall time including start-up and model load."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "posecli", "video", str(clip), "--out", str(out), "--quiet",
           "--device", "cpu", "--height", str(height)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - t0
    frames = len(json.loads(out.read_text())["frames"]) if proc.returncode == 0 else 0
    return {"command": " ".join(["posecli"] + cmd[3:]), "exit_code": proc.returncode, "wall_s": round(wall, 2),
            "frames": frames, "fps_including_startup": round(frames / wall, 3) if frames else None,
            "stderr_tail": proc.stderr[-300:] if proc.returncode else ""}


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------
def pipeline_memory(report: dict) -> dict:
    repeat, _ = settings(report)
    frames = 2000 if repeat <= 2 else 10_000
    height = 64
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "long.mp4", frames, size_wh=(192, 128))
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, "-c", "import sys, json; from bench.bench_pipeline import _memory_child; "
               "print(json.dumps(_memory_child(sys.argv[1], sys.argv[2], int(sys.argv[3]))))",
               str(clip), str(tmp), str(height)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=3600)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr[-500:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = child["rss_mb_end"] - child["rss_mb_at_100"]
    return {
        "title": f"Video pipeline memory over {frames} frames",
        "notes": [
            f"A fresh process runs the `posecli video` code path (VideoRun: decode, network, parse, "
            f"tracking, streamed JSON, --render mp4) on a generated {frames}-frame 192x128 clip with the "
            f"default model at input height {height} (kept small so that {frames} frames fit in the bench). "
            f"RSS read at frame 100 and at the last frame (before the outputs are closed). "
            f"Target: growth <= {RSS_GROWTH_TARGET_MB} MB.",
        ],
        "frames": child["frames"],
        "rss_mb_at_100": round(child["rss_mb_at_100"], 1),
        "rss_mb_end": round(child["rss_mb_end"], 1),
        "rss_mb_max": round(child["rss_mb_max"], 1),
        "rss_mb_after_close": round(child["rss_mb_after_close"], 1),
        "growth_mb": round(growth, 1),
        "growth_met": growth <= RSS_GROWTH_TARGET_MB,
        "fps": round(child["frames"] / child["seconds"], 1),
        "wall_s": round(wall, 1),
    }


def _memory_child(clip: str, tmp: str, height: int) -> dict:
    """Run in a fresh process: RSS after 100 frames, at the end, and its maximum."""
    from posecli.video.run import VideoOptions, VideoRun

    est = _estimator(height)
    job = VideoRun(est, clip, Path(tmp) / "poses.json", options=VideoOptions(), render=Path(tmp) / "annotated.mp4")
    rss = {"at_100": None, "last": None, "max": 0.0}
    done = [0]

    def progress(n):
        done[0] += n
        if done[0] % 50 == 0 or done[0] in (100, job.expected):
            now = _rss_mb()
            rss["max"] = max(rss["max"], now)
            rss["last"] = now  # while the pipeline is still running, not after it freed its buffers
            if done[0] == 100:
                rss["at_100"] = now

    t0 = time.perf_counter()
    job.run(progress=progress)
    seconds = time.perf_counter() - t0
    return {"frames": job.frames_done, "rss_mb_at_100": rss["at_100"], "rss_mb_end": rss["last"],
            "rss_mb_max": rss["max"], "rss_mb_after_close": _rss_mb(), "seconds": seconds}


SECTIONS = [
    ("pipeline", pipeline),
    ("pipeline_memory", pipeline_memory),
]


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    rep: dict = {"settings": {"repeat": 2 if quick else 7, "warmup": 1 if quick else 2}, "sections": {}}
    for name, fn in SECTIONS:
        rep["sections"][name] = fn(rep)
        print(json.dumps({name: rep["sections"][name]}, indent=1), flush=True)
