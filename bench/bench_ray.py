"""``--engine ray`` bench: batch throughput with 1 and 2 Ray workers, beside the local engine.

Same inputs for every engine: the COCO mini photos and two generated clips (a photo
sliding sideways, 480x320), default model on the CPU. One run each (a batch run is long;
the machine's load is in the report). Each Ray figure is the wall time of
:func:`~posecli.batch.ray.driver.run_batch_ray` on a Ray instance started once beforehand, so it
includes starting the actors and loading the model in each (``startup_s``: until the first
result). The local engine runs in this process with the model already loaded.

Run alone: ``python -m bench.bench_ray`` (prints the JSON).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from . import MINI
from .bench_pipeline import make_clip

CLIP_FRAMES = 40
CLIPS = 4
WORKERS = (1, 2)


def _inputs(root: Path) -> tuple[int, int]:
    """Photos and clips in ``root``; returns (inputs, frames)."""
    photos = sorted(MINI.glob("*.jpg"))
    if not photos:
        raise FileNotFoundError(f"no photos in {MINI} (set POSECLI_SHARED)")
    for p in photos:
        shutil.copy(p, root / p.name)
    for i in range(CLIPS):
        make_clip(root / f"clip{i}.mp4", CLIP_FRAMES)
    return len(photos) + CLIPS, len(photos) + CLIPS * CLIP_FRAMES


def _row(engine: str, workers: int | None, wall: float, inputs: int, frames: int,
         startup: float | None) -> dict:
    return {"engine": engine, "workers": workers, "wall_s": round(wall, 2), "startup_s": startup,
            "inputs_per_s": round(inputs / wall, 3), "frames_per_s": round(frames / wall, 3)}


def run(report: dict) -> None:
    from posecli.batch.local import plan_batch, run_job
    from posecli.batch.ray.driver import import_ray, ray_session, run_batch_ray
    from posecli.inference.estimator import PoseEstimator

    import_ray()  # MissingExtraError: the section says what to install
    cpus = os.cpu_count() or 1
    options = {"model": None, "device": "cpu"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="posecli-bench-ray-") as tmp:
        root = Path(tmp) / "in"
        root.mkdir()
        inputs, frames = _inputs(root)

        # local engine, model loaded beforehand, all cores
        est = PoseEstimator(**options)
        plan = plan_batch(root, Path(tmp) / "local")
        t0 = time.perf_counter()
        for job in plan.todo:
            run_job(est, job)
        rows.append(_row("local", None, time.perf_counter() - t0, inputs, frames, None))
        del est

        t_init = time.perf_counter()
        with ray_session(num_cpus=cpus):
            init_s = round(time.perf_counter() - t_init, 2)
            for n in WORKERS:
                plan = plan_batch(root, Path(tmp) / f"ray{n}")
                first: list[float] = []
                pids: set[int] = set()

                def on_result(outcome, first=first, pids=pids):
                    if not first:
                        first.append(time.perf_counter())
                    pids.add(outcome.pid)

                t0 = time.perf_counter()
                res = run_batch_ray(plan, options, num_workers=n, on_result=on_result)
                wall = time.perf_counter() - t0
                if res.failed:
                    raise RuntimeError(f"{len(res.failed)} inputs failed: {res.failed[0]}")
                rows.append(_row("ray", n, wall, inputs, frames, round(first[0] - t0, 2) if first else None))
                rows[-1]["worker_processes"] = len(pids)
    by = {r["workers"]: r for r in rows if r["engine"] == "ray"}
    report["sections"]["ray"] = {
        "title": "Batch on Ray: 1 vs 2 workers (posecli batch --engine ray)",
        "notes": [f"{inputs} inputs ({inputs - CLIPS} photos, {CLIPS} clips of {CLIP_FRAMES} frames at "
                  f"480x320), {frames} frames; default model, CPU, one run each. Ray figures include "
                  "actor start-up and model load in every worker; the local engine's model was loaded "
                  "beforehand."],
        "cpus": cpus,
        "ray_init_s": init_s,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "speedup_2_vs_1_workers": round(by[1]["wall_s"] / by[2]["wall_s"], 3) if len(by) == 2 else None,
        "rows": rows,
    }


if __name__ == "__main__":
    rep: dict = {"sections": {}}
    run(rep)
    print(json.dumps(rep["sections"]["ray"], indent=2))
