"""Streams of frames and start-up, per runtime: ``posecli video`` and ``posecli batch`` against
OpenVINO's own throughput, and whole-process ``posecli image`` / ``posecli --help``.

* ``runtime_video``: a generated 1280x720 clip (a COCO photo sliding sideways, >= 200
  frames) through the ``posecli video`` code path (VideoRun: decode, network, parse,
  tracking, streamed JSON; also with ``--render``) on each runtime, interleaved with
  OpenVINO's own runtime running the IR alone with the THROUGHPUT hint (an
  AsyncInferQueue of its optimal size) on the same letterboxed frame. Ratio: posecli
  frames/s over OpenVINO's network-alone frames/s (target >= 0.7).
* ``runtime_batch``: a folder of >= 100 COCO photos through the ``posecli batch`` code path
  (plan_batch, run_job per photo) on each runtime; photos/s over the same OpenVINO figure.
* ``runtime_photos``: whole processes, ``posecli image`` on the 80 train80 photos (31 sizes)
  in its default mode with ``--runtime auto`` (photos of many sizes on OpenVINO's dynamic
  network where OpenVINO won), against the same on onnxruntime alone and against the
  default of before issue 29 (``--mode balanced --flip``, onnxruntime, as photos of many
  sizes then ran): interleaved rounds, medians, ratios inside the run.
* ``runtime_startup``: whole processes, ``posecli --help`` and ``posecli image photo.jpg``
  cold (a fresh store holding only the model files: no optimized graph, no compiled
  network, no runtime verdict; auto then measures both runtimes once) and warm (the same
  command again), per runtime; medians of repeated runs.

The onnxruntime rows are the fallback (no OpenVINO, or OpenVINO slower on the CPU).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from . import MINI, SHARED, settings
from .bench_pipeline import make_clip
from .bench_runtime import IR_XML

REPO = Path(__file__).resolve().parents[1]
CLIP_WH = (1280, 720)
VIDEO_TARGET = 0.7
TRAIN80 = SHARED / "data" / "coco-train2017-mini80"
RUNTIMES = ("auto", "onnxruntime", "openvino")


def _openvino_throughput(frame: np.ndarray, height: int, seconds: float = 3.0, cpu: list | None = None) -> float | None:
    """Frames/s of OpenVINO's runtime on the IR alone, THROUGHPUT hint, requests kept in flight
    (``cpu``: gets this process's CPU seconds per frame appended)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    from posecli.maps import letterbox

    padded, _ = letterbox(frame, height, 8, (128.0, 128.0, 128.0))
    x = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], np.float32)
    core = ov.Core()
    model = core.read_model(str(IR_XML))
    model.reshape([1, 3, *x.shape[2:]])
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    queue = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    for _ in range(2 * len(queue)):
        queue.start_async({0: x})
    queue.wait_all()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for _ in range(len(queue)):
            queue.start_async({0: x})
            n += 1
    queue.wait_all()
    if cpu is not None:
        cpu.append((time.process_time() - c0) / n)
    return n / (time.perf_counter() - t0)


def _estimators():
    from posecli.inference.estimator import PoseEstimator

    out = {}
    for runtime in ("auto", "onnxruntime"):
        est = PoseEstimator(None, device="cpu", runtime=runtime)
        out[f"{runtime} ({est.model.runtime})"] = est
    return out


def runtime_video(report: dict) -> dict:
    from posecli.video.run import VideoOptions, VideoRun

    repeat, _ = settings(report)
    frames = 200
    rounds = 1 if repeat <= 3 else 3
    ests = _estimators()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", frames, size_wh=CLIP_WH)
        first = cv2.VideoCapture(str(clip)).read()[1]
        height = next(iter(ests.values())).height
        fps: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        ov_key = "openvino IR network alone (throughput hint)"
        for _ in range(rounds):  # interleaved: a load change hits every row alike
            ov_fps = _openvino_throughput(first, height, cpu=cpu.setdefault(ov_key, []))
            if ov_fps is not None:
                fps.setdefault(ov_key, []).append(ov_fps)
            for name, est in ests.items():
                for render in (False, True):
                    t0, c0 = time.perf_counter(), time.process_time()
                    VideoRun(est, clip, tmp / "poses.json", options=VideoOptions(),
                             render=tmp / "annotated.mp4" if render else None).run()
                    key = f"posecli video{' --render' if render else ''}, runtime {name}"
                    fps.setdefault(key, []).append(frames / (time.perf_counter() - t0))
                    cpu.setdefault(key, []).append((time.process_time() - c0) / frames)
    med = {k: statistics.median(v) for k, v in fps.items()}
    cpu_ms = {k: 1000 * statistics.median(v) for k, v in cpu.items() if v}
    ref = med.get(ov_key)
    rows = [{"what": k, "fps": round(v, 2), "over_openvino_network": round(v / ref, 3) if ref else None,
             "cpu_ms_per_frame": round(cpu_ms[k], 1) if k in cpu_ms else None,
             "cpu_ratio": round(cpu_ms[ov_key] / cpu_ms[k], 3) if ov_key in cpu_ms and k in cpu_ms else None}
            for k, v in med.items()]
    default = med.get(next(k for k in med if k.startswith("posecli video, runtime auto")))
    return {
        "title": "posecli video end to end vs OpenVINO's throughput on the network alone (1280x720 clip)",
        "notes": [(f"{frames} frames {CLIP_WH[0]}x{CLIP_WH[1]} mp4v, input height {height}, batch size 1, "
                   f"tracking on, JSON streamed; {rounds} round(s), median. Target: default path >= {VIDEO_TARGET} "
                   "of OpenVINO's network-alone frames/s. cpu_ratio: OpenVINO's CPU time per frame for the "
                   "network alone over the row's (this process's user+system time): the ratio an otherwise "
                   "idle machine would give, where both keep every core busy."),
                  f"load average at the end: {[round(v, 2) for v in os.getloadavg()]}"],
        "rows": rows,
        "default_over_openvino": round(default / ref, 3) if ref and default else None,
        "target": VIDEO_TARGET,
        "met": bool(ref and default and default / ref >= VIDEO_TARGET),
    }


def _photo_folder(root: Path, n: int = 100) -> Path:
    photos = sorted(TRAIN80.glob("*.jpg")) + sorted(MINI.glob("*.jpg"))
    if not photos:
        raise FileNotFoundError(f"no photos in {TRAIN80} (set POSECLI_SHARED)")
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = photos[i % len(photos)]
        dst = root / f"{i:03d}_{src.name}"
        if _same_fs(src, root):
            os.link(src, dst)
        else:
            shutil.copy(src, dst)
    return root


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def runtime_batch(report: dict) -> dict:
    from posecli.batch.local import plan_batch, run_job
    from posecli.batch.prefetch import Prefetch

    ests = _estimators()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = _photo_folder(tmp / "photos")
        n = len(list(folder.iterdir()))
        height = next(iter(ests.values())).height
        ov_fps = _openvino_throughput(np.full((480, 640, 3), 100, np.uint8), height)
        rates = {}
        for name, est in ests.items():
            out = tmp / f"out-{name.split()[0]}"
            plan = plan_batch(folder, out)
            t0 = time.perf_counter()
            with Prefetch(est, plan.todo) as ahead:
                for job in plan.todo:
                    run_job(est, job, decoded=ahead.take(job))
            rates[f"posecli batch, runtime {name}"] = n / (time.perf_counter() - t0)
    rows = [{"what": "openvino IR network alone (throughput hint, 640x480 frame)", "per_s": round(ov_fps, 2)}] \
        if ov_fps else []
    rows += [{"what": k, "per_s": round(v, 2), "over_openvino_network": round(v / ov_fps, 3) if ov_fps else None}
             for k, v in rates.items()]
    return {"title": f"posecli batch over {n} COCO photos vs OpenVINO's network-alone throughput",
            "notes": [("The `posecli batch` code path (plan_batch, Prefetch decoding the next photo, run_job: "
                       "network, parse, JSON per photo written atomically) after the model is loaded; one pass "
                       "each. The photos have many sizes: auto runs a size on OpenVINO only once it recurs "
                       "past the break-even (see posecli/network/backends/mixed.py)."),
                      f"load average at the end: {[round(v, 2) for v in os.getloadavg()]}"],
            "rows": rows}


def _wall(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed: {proc.stderr.decode()[-300:]}")
    return time.perf_counter() - t0


PHOTO_COMMANDS = (
    ("posecli image (accurate), runtime auto", ["--runtime", "auto"]),
    ("posecli image (accurate), runtime onnxruntime", ["--runtime", "onnxruntime"]),
    ("old default: --mode balanced --flip, runtime onnxruntime", ["--mode", "balanced", "--flip",
                                                                  "--runtime", "onnxruntime"]),
)


def runtime_photos(report: dict) -> dict:
    repeat, _ = settings(report)
    rounds = max(2, min(repeat, 3))
    photos = sorted(str(p) for p in (SHARED / "data" / "coco-train2017-mini80").glob("*.jpg"))
    if not photos:
        raise FileNotFoundError("no photos in coco-train2017-mini80 (set POSECLI_SHARED)")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    times: dict[str, list[float]] = {label: [] for label, _ in PHOTO_COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):  # in turn, so that load changes hit every command
            for i, (label, args) in enumerate(PHOTO_COMMANDS):
                out = Path(tmp) / f"{r}-{i}"
                times[label].append(_wall([sys.executable, "-m", "posecli", "image", *photos, "-q", "--device", "cpu",
                                           "--out", f"{out}{os.sep}", *args], env))
    wall = {label: statistics.median(t) for label, t in times.items()}
    auto, ort, old = (wall[label] for label, _ in PHOTO_COMMANDS)
    rows = [{"command": label, "wall_s": round(wall[label], 2), "photos_per_s": round(len(photos) / wall[label], 2)}
            for label, _ in PHOTO_COMMANDS]
    return {"title": f"posecli image on {len(photos)} photos of many sizes: runtime routing and the old default",
            "notes": [(f"whole processes (start-up included), the three commands in turn, median of {rounds} "
                       "rounds; photos of 31 sizes, so under auto most go to OpenVINO's dynamic network where "
                       "OpenVINO won the verdict (posecli/network/backends/mixed.py)."),
                      f"load average at the end: {[round(v, 2) for v in os.getloadavg()]}"],
            "rows": rows,
            "auto_over_onnxruntime": round(auto / ort, 3),
            "auto_over_old_default": round(auto / old, 3),
            "target": "auto_over_old_default <= 1 (issue 29: image's default no slower than before)",
            "met": auto / old <= 1.0}


def runtime_startup(report: dict) -> dict:
    from posecli.network.store import DEFAULT_MODEL, model_path

    repeat, _ = settings(report)
    warm_runs = max(3, min(repeat, 5))
    photo = MINI / "000000000785.jpg"
    env0 = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    posecli = [sys.executable, "-m", "posecli"]
    rows = [{"command": "posecli --help", "runtime": "-",
             "warm_s": round(statistics.median(_wall(posecli + ["--help"], env0) for _ in range(warm_runs)), 3)}]
    for runtime in RUNTIMES:
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp)
            for prec in ("fp32", "int8"):
                src = model_path(DEFAULT_MODEL, prec)
                if src.exists():
                    shutil.copy2(src, model_path(DEFAULT_MODEL, prec, store))
            env = {**env0, "POSECLI_MODELS": str(store)}
            cmd = posecli + ["image", str(photo), "--device", "cpu", "--runtime", runtime]
            cold = _wall(cmd, env)
            warm = statistics.median(_wall(cmd, env) for _ in range(warm_runs))
            rows.append({"command": "posecli image photo.jpg", "runtime": runtime, "cold_s": round(cold, 3),
                         "warm_s": round(warm, 3)})
    return {"title": "Start-up: whole processes (posecli --help, posecli image on one photo)",
            "notes": [("cold: a fresh store with only the model files (auto measures both runtimes once and "
                       "remembers the verdict; OpenVINO compiles and caches its networks; onnxruntime writes "
                       f"its optimized graph); warm: the same command again, median of {warm_runs}."),
                      f"load average at the end: {[round(v, 2) for v in os.getloadavg()]}"],
            "rows": rows}


SECTIONS = [("runtime_video", runtime_video), ("runtime_batch", runtime_batch), ("runtime_photos", runtime_photos),
            ("runtime_startup", runtime_startup)]
