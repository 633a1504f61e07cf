"""3D: ``posecli 3d`` on the shared multi-camera demo, against Pose2Sim on the same 2D.

The demo is Pose2Sim's ``Demo_SinglePerson`` (``$POSECLI_SHARED/data/multiview-single``: 4 phone
cameras, 1088x1920 portrait, 60 fps, 100 frames, calibration in Pose2Sim's TOML). The 2D is
``posecli video`` per camera; the figures (:mod:`bench.metrics_3d`, measured from the files) are
the issue's targets:

* limbs: the 8 arm and leg segments' IQR over frames / median, median over segments (<= 0.06), and
  the share of segment-frames more than 20% off the segment's median (<= 5%);
* reprojection into each camera against that camera's own 2D (confidence >= 0.3): median <= 12.0 px;
* held-out camera: triangulated from the other three, projected into it: median per keypoint
  (reported, no target);
* the 3D stage's time / the 2D stage's (in one process, interleaved): <= 0.10;
* OpenSim inverse kinematics on the TRC (Pose2Sim's scaling and COCO-17 IK set-up, run by the
  consumers' venv): marker RMS error, lower than on Pose2Sim's triangulation (0.12 m in the issue);
* each 2D mode (fast, balanced, accurate): the figures above, to choose ``posecli 3d``'s default.

Pose2Sim 0.10.49's person association + triangulation (its demo settings) runs on the same 2D in
the consumers' venv (``make consumers``) when it is there.

Settings by environment: ``POSECLI_BENCH_3D_2D=DIR`` reuses 2D already made (``DIR/camNN.json`` for
the default mode, ``DIR/<mode>/camNN.json`` for the others) instead of running ``posecli video``;
``POSECLI_BENCH_3D_IK=full|simple|off`` picks Pose2Sim's OpenSim model for IK (full, the demo's,
by default); ``POSECLI_CONSUMERS_PYTHON`` another consumers' python.

Run alone: ``python -m bench --only 3d`` (sections ``3d``, ``3d_modes``, ``3d_videos``: the
videos end to end at ``posecli 3d``'s own default mode, ``3d_pose2sim``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import SHARED, metrics_3d, settings

DEMO = SHARED / "data" / "multiview-single"
CALIBRATION = DEMO / "calibration" / "Calib.toml"
CAMERAS = ("cam01", "cam02", "cam03", "cam04")
DEFAULT_2D_MODE = "fast"  # posecli video's default
MODES_2D = ("fast", "balanced", "accurate")
TARGETS = {"iqr_over_median": 0.06, "off_20pct": 0.05, "reprojection_median_px": 12.0, "time_ratio": 0.10,
           "ik_rms_m": 0.12}
# The issue's figures for Pose2Sim on the same 2D (what this bench reproduces in "pose2sim").
ISSUE_POSE2SIM = {"iqr_over_median": 0.111, "off_20pct": 0.129, "reprojection_median_px": 12.0,
                  "reprojection_p90_px": 59.0, "ik_rms_m": 0.12}
ROOT = Path(__file__).resolve().parents[1]
CONSUMERS = Path(__file__).resolve().parent / "consumers"
_RUN_2D: list[tempfile.TemporaryDirectory] = []  # this run's 2D folder, shared by the sections, made on first use
TWO_D_SECONDS: dict[str, float] = {}  # posecli video's wall time over the 4 videos, per mode, when run here


# ---------------------------------------------------------------------------------------------
# Steps: 2D per camera, posecli 3d, Pose2Sim, OpenSim
# ---------------------------------------------------------------------------------------------
def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def two_d(mode: str) -> list[Path]:
    """``posecli video`` (``--mode mode``) per camera: ``camNN.json`` paths, made once per bench
    run (in a folder removed at exit), or reused from ``$POSECLI_BENCH_3D_2D`` when there."""
    cache = os.environ.get("POSECLI_BENCH_3D_2D")
    if cache:
        base = Path(cache).resolve() if mode == DEFAULT_2D_MODE else Path(cache).resolve() / mode
        found = [base / f"{c}.json" for c in CAMERAS]
        if all(p.is_file() for p in found):
            return found
    if not _RUN_2D:
        _RUN_2D.append(tempfile.TemporaryDirectory(prefix="bench3d-2d-"))
    out = Path(_RUN_2D[0].name) / mode
    if all((out / f"{c}.json").is_file() for c in CAMERAS):
        return [out / f"{c}.json" for c in CAMERAS]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    t0 = time.perf_counter()
    for cam in CAMERAS:
        path = out / f"{cam}.json"
        subprocess.run([sys.executable, "-m", "posecli", "video", str(DEMO / "videos" / f"{cam}.mp4"), "-q",
                        "--mode", mode, "--out", str(path)], check=True, env=_env())
        paths.append(path)
    TWO_D_SECONDS[mode] = round(time.perf_counter() - t0, 1)
    return paths


def posecli_3d(inputs: list[Path], calibration: Path, work: Path, limbs: bool = True) -> tuple[Path, Path, float]:
    """posecli 3d's library call on 2D JSON files (what ``posecli 3d --from-2d [--no-limbs]`` runs):
    ``(json, trc, seconds of the 3D stage)``; the 2D files are read before the clock starts."""
    from posecli.multiview.run import ThreeDOptions, ThreeDRun, reconstruction_config

    work.mkdir(parents=True, exist_ok=True)
    outs = (work / "3d.json", work / "3d.trc")
    job = ThreeDRun(ThreeDOptions(inputs=tuple(inputs), calibration=(calibration,), outs=outs, from_2d=True,
                                  config=reconstruction_config(limbs=limbs)))
    t0 = time.perf_counter()
    job.run()
    return outs[0], outs[1], time.perf_counter() - t0


def stage_times(mode: str, inputs: list[Path], work: Path, rounds: int) -> dict:
    """Median seconds of the 2D stage (posecli's video pipeline over the 4 videos, tracking on, as
    ``posecli video`` runs) and of the 3D stage on its results, interleaved in one process."""
    import statistics

    from posecli import PoseEstimator, iter_video_poses

    est = PoseEstimator(mode=mode)
    times: dict[str, list[float]] = {"2d": [], "3d": []}
    for r in range(rounds + 1):  # the first round warms up (model load, runtime choice)
        t0 = time.perf_counter()
        for cam in CAMERAS:
            for _ in iter_video_poses(est, DEMO / "videos" / f"{cam}.mp4"):
                pass
        t2d = time.perf_counter() - t0
        t3d = posecli_3d(inputs, CALIBRATION, work / f"round{r}")[2]
        if r:
            times["2d"].append(t2d)
            times["3d"].append(t3d)
    s2d, s3d = statistics.median(times["2d"]), statistics.median(times["3d"])
    return {"two_d_s": round(s2d, 2), "three_d_s": round(s3d, 3), "ratio": round(s3d / s2d, 4),
            "target": TARGETS["time_ratio"], "met": s3d / s2d <= TARGETS["time_ratio"], "rounds": rounds}


def consumer_python() -> str | None:
    """The consumers' venv python (``make consumers``; ``$POSECLI_CONSUMERS_PYTHON``), None when missing."""
    path = os.environ.get("POSECLI_CONSUMERS_PYTHON") or str(ROOT / ".venv-consumers" / "bin" / "python")
    return path if Path(path).exists() else None


def _consumer(script: str, *args: str) -> dict:
    py = consumer_python()
    with tempfile.TemporaryDirectory(prefix="bench3d-cwd-") as cwd:  # OpenSim logs into its cwd
        done = subprocess.run([py, str(CONSUMERS / script), *args], check=False, capture_output=True, text=True,
                              env={**os.environ, "MPLBACKEND": "Agg"}, cwd=cwd)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"{script}: {(lines or ['no output'])[-1][-600:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pose2sim(inputs: list[Path], calibration: Path, project: Path) -> dict:
    """Pose2Sim's association + triangulation of the 2D: {"trc", "seconds", "log"}."""
    return _consumer("pose2sim_baseline.py", "--calibration", str(calibration), "--openpose",
                     *map(str, inputs), "--project", str(project))


def opensim_ik(trc: Path, out: Path) -> dict | None:
    """OpenSim IK marker errors on ``trc`` (None when switched off)."""
    model = os.environ.get("POSECLI_BENCH_3D_IK", "full")
    if model == "off":
        return None
    return _consumer("opensim_ik.py", str(trc), "--out", str(out), *(["--simple"] if model == "simple" else []))


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def figures(xyz, cams, people_2d) -> dict:
    """Limb consistency, coverage and reprojection of (F, K, 3) world points."""
    limbs = metrics_3d.limb_consistency(xyz)
    reproj = metrics_3d.reprojection(xyz, cams, people_2d)
    return {"iqr_over_median": limbs["iqr_over_median"], "off_20pct": limbs["off_20pct"],
            "coverage": metrics_3d.coverage(xyz),
            "reprojection_median_px": reproj["median_px"], "reprojection_p90_px": reproj["p90_px"],
            "worst_segment": limbs["worst_segment"], "segments": limbs["segments"],
            "cameras": reproj["cameras"]}


def held_out(run3d, inputs: list[Path], cams, people_2d, work: Path) -> dict:
    """Triangulate from 3 cameras with ``run3d(inputs, calibration, work) -> (F, K, 3)``, project into
    the 4th; per keypoint and per camera median distance to the 4th's own 2D."""
    import numpy as np

    per_cam, per_kp = [], {}
    for c, cam in enumerate(cams):
        keep = [i for i in range(len(cams)) if i != c]
        sub = work / f"without_{cam.name}"
        sub.mkdir(parents=True, exist_ok=True)
        calib = sub / "Calib.toml"
        metrics_3d.write_cameras([cams[i] for i in keep], calib)
        xyz = run3d([inputs[i] for i in keep], calib, sub)
        rows = metrics_3d.per_keypoint_distance(xyz, cam, people_2d[c])
        pooled = metrics_3d.reprojection(xyz, [cam], [people_2d[c]])
        per_cam.append({"held_out": cam.name, "median_px": pooled["median_px"], "p90_px": pooled["p90_px"],
                        "points": pooled["points"]})
        for r in rows:
            per_kp.setdefault(r["keypoint"], []).append(r["median_px"])
    keypoints = [{"keypoint": k, "median_px_over_cameras": round(float(np.median(v)), 1),
                  "per_camera": " / ".join(f"{x:.0f}" for x in v)} for k, v in per_kp.items()]
    return {"cameras": per_cam, "keypoints": keypoints,
            "median_px": round(float(np.median([r["median_px"] for r in per_cam if r["median_px"] is not None])), 2)}


def _pass(value, target) -> bool | None:
    return None if value is None else value <= target


def compare(ours: dict, theirs: dict | None) -> list[dict]:
    """One row per target: posecli 3d, Pose2Sim measured here, the issue's Pose2Sim, the target."""
    rows = []
    for key in ("iqr_over_median", "off_20pct", "coverage", "reprojection_median_px", "reprojection_p90_px"):
        target = TARGETS.get(key)
        rows.append({"figure": key, "posecli_3d": ours.get(key), "pose2sim_here": (theirs or {}).get(key),
                     "pose2sim_issue": ISSUE_POSE2SIM.get(key), "target": target,
                     "met": _pass(ours.get(key), target) if target is not None else None})
    return rows


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------
def _demo_missing() -> str | None:
    if not CALIBRATION.is_file() or not all((DEMO / "videos" / f"{c}.mp4").is_file() for c in CAMERAS):
        return f"the shared demo is missing ({DEMO})"
    return None


def pose2sim_only(report: dict) -> dict:
    """Pose2Sim on posecli's 2D at the default mode, measured the same way as posecli 3d."""
    if (why := _demo_missing()) or (why := None if consumer_python() else "the consumers' venv is missing"):
        return {"skipped": why}
    cams = metrics_3d.read_cameras(CALIBRATION)
    with tempfile.TemporaryDirectory(prefix="bench3d-") as tmp:
        work = Path(tmp)
        inputs = two_d(DEFAULT_2D_MODE)
        people = [metrics_3d.posecli_2d_people(p) for p in inputs]
        p2s = pose2sim(inputs, CALIBRATION, work / "p2s")
        xyz = metrics_3d.trc_keypoints(Path(p2s["trc"]))
        out = {"title": "Pose2Sim 0.10.49 on posecli's 2D (demo settings, COCO-18 read as its COCO)",
               **figures(xyz, cams, people), "seconds": p2s["seconds"]}

        def run_p2s(sub_inputs, calib, sub):
            return metrics_3d.trc_keypoints(Path(pose2sim(sub_inputs, calib, sub / "p2s")["trc"]))

        out["held_out"] = held_out(run_p2s, inputs, cams, people, work / "held")
        ik = opensim_ik(Path(p2s["trc"]), work / "ik")
        if ik:
            out["opensim_ik"] = {k: v for k, v in ik.items() if k != "mot"}
    return out


def _ik_row(ik: dict | None) -> dict | None:
    return None if ik is None else {k: v for k, v in ik.items() if k != "mot"}


def posecli_default(report: dict) -> dict:
    """posecli 3d on the default 2D: every figure, Pose2Sim beside it, the stage times."""
    if why := _demo_missing():
        return {"skipped": why}
    repeat, _ = settings(report)
    cams = metrics_3d.read_cameras(CALIBRATION)
    with tempfile.TemporaryDirectory(prefix="bench3d-") as tmp:
        work = Path(tmp)
        inputs = two_d(DEFAULT_2D_MODE)
        people = [metrics_3d.posecli_2d_people(p) for p in inputs]
        js, trc, _ = posecli_3d(inputs, CALIBRATION, work / "ours")
        xyz = metrics_3d.posecli_3d_keypoints(js)[0]
        ours = figures(xyz, cams, people)
        ours["trc_matches_json"] = _same(metrics_3d.trc_keypoints(trc), xyz)

        def run_ours(sub_inputs, calib, sub):
            return metrics_3d.posecli_3d_keypoints(posecli_3d(sub_inputs, calib, sub)[0])[0]

        out = {"title": "posecli 3d on the shared demo (2D: posecli video, default mode)",
               "notes": [("2D and 3D measured from the files by bench/metrics_3d.py; Pose2Sim 0.10.49 "
                          "(demo settings) on the same 2D in the consumers' venv.")],
               "held_out": held_out(run_ours, inputs, cams, people, work / "held")}
        theirs, their_ik = None, None
        if consumer_python():
            p2s = pose2sim(inputs, CALIBRATION, work / "p2s")
            theirs = figures(metrics_3d.trc_keypoints(Path(p2s["trc"])), cams, people)
            try:
                their_ik = opensim_ik(Path(p2s["trc"]), work / "ik_p2s")
            except RuntimeError as exc:
                their_ik = {"error": str(exc)[-300:]}
            try:
                our_ik = opensim_ik(trc, work / "ik_ours")
            except RuntimeError as exc:
                our_ik = {"error": str(exc)[-300:]}
            out["opensim_ik"] = [{"trc": "posecli 3d", **(_ik_row(our_ik) or {})},
                                 {"trc": "Pose2Sim", **(_ik_row(their_ik) or {})}]
        out["targets"] = compare(ours, theirs)
        out["limb_step"] = _limb_step(inputs, cams, people, ours, out["held_out"]["median_px"], work / "nolimbs")
        out["stage_times"] = stage_times(DEFAULT_2D_MODE, inputs, work / "timed", max(1, min(repeat, 3)))
        out["segments"] = ours.pop("segments")
        out["cameras"] = ours.pop("cameras")
        out["posecli_3d"] = {k: v for k, v in ours.items()}
    return out


def _limb_step(inputs, cams, people, ours: dict, held_px: float, work: Path) -> list[dict]:
    """What holding bone lengths does: the figures with and without it (``--no-limbs``)."""
    js, _, _ = posecli_3d(inputs, CALIBRATION, work / "all", limbs=False)
    free = figures(metrics_3d.posecli_3d_keypoints(js)[0], cams, people)

    def run_free(sub_inputs, calib, sub):
        return metrics_3d.posecli_3d_keypoints(posecli_3d(sub_inputs, calib, sub, limbs=False)[0])[0]

    free_held = held_out(run_free, inputs, cams, people, work / "held")["median_px"]
    keys = ("iqr_over_median", "off_20pct", "reprojection_median_px", "reprojection_p90_px")
    return [{"3d": "posecli 3d", **{k: ours[k] for k in keys}, "held_out_median_px": held_px},
            {"3d": "posecli 3d --no-limbs", **{k: free[k] for k in keys}, "held_out_median_px": free_held}]


def modes(report: dict) -> dict:
    """posecli 3d's figures for each 2D mode (fast, balanced, accurate): to choose its default."""
    if why := _demo_missing():
        return {"skipped": why}
    cams = metrics_3d.read_cameras(CALIBRATION)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench3d-") as tmp:
        for mode in MODES_2D:
            work = Path(tmp) / mode
            inputs = two_d(mode)
            people = [metrics_3d.posecli_2d_people(p) for p in inputs]
            js, _, _ = posecli_3d(inputs, CALIBRATION, work / "ours")
            f = figures(metrics_3d.posecli_3d_keypoints(js)[0], cams, people)
            row = {"mode": mode, **{k: f[k] for k in ("iqr_over_median", "off_20pct", "coverage",
                                                      "reprojection_median_px", "reprojection_p90_px")}}
            if consumer_python():
                p2s = figures(metrics_3d.trc_keypoints(Path(pose2sim(inputs, CALIBRATION, work / "p2s")["trc"])),
                              cams, people)
                row.update({"pose2sim_iqr_over_median": p2s["iqr_over_median"],
                            "pose2sim_reprojection_median_px": p2s["reprojection_median_px"]})
            def run_ours(sub_inputs, calib, sub):
                return metrics_3d.posecli_3d_keypoints(posecli_3d(sub_inputs, calib, sub)[0])[0]

            row["held_out_median_px"] = held_out(run_ours, inputs, cams, people, work / "held")["median_px"]
            row["two_d_s"] = TWO_D_SECONDS.get(mode)
            rows.append(row)
    return {"title": "posecli 3d per 2D mode (each mode's own 2D is the reference for its reprojection)",
            "notes": ["two_d_s: posecli video over the 4 videos (100 frames each), when this run made the 2D."],
            "rows": rows}


def _same(a, b) -> bool:
    """Whether the TRC's (F, K, 3) points are the JSON's to 0.1 mm wherever the JSON has one
    (the TRC may hold more: gaps filled for OpenSim)."""
    import numpy as np

    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    has = np.isfinite(b)
    return bool(np.isfinite(a[has]).all() and np.allclose(a[has], b[has], atol=1e-4))


def videos_end_to_end(report: dict) -> dict:
    """``posecli 3d VIDEO x4`` at its own default 2D mode: the run's own 2D and 3D stage times, and
    its figures against ``posecli video`` at that mode (the same 2D)."""
    if why := _demo_missing():
        return {"skipped": why}
    from posecli import PoseEstimator
    from posecli.cli.threed import threed_command
    from posecli.multiview.run import ThreeDOptions, ThreeDRun

    mode = next(p.default for p in threed_command.params if p.name == "mode")
    cams = metrics_3d.read_cameras(CALIBRATION)
    with tempfile.TemporaryDirectory(prefix="bench3d-") as tmp:
        work = Path(tmp)
        outs = (work / "3d.json", work / "3d.trc")
        videos = tuple(DEMO / "videos" / f"{c}.mp4" for c in CAMERAS)
        job = ThreeDRun(ThreeDOptions(inputs=videos, calibration=(CALIBRATION,), outs=outs),
                        estimator=PoseEstimator(mode=mode))
        job.run()
        people = [metrics_3d.posecli_2d_people(p) for p in two_d(mode)]
        f = figures(metrics_3d.posecli_3d_keypoints(outs[0])[0], cams, people)
        ik = None
        if consumer_python():
            try:
                ik = _ik_row(opensim_ik(outs[1], work / "ik"))
            except RuntimeError as exc:
                ik = {"error": str(exc)[-300:]}
    ratio = job.seconds_3d / job.seconds_2d
    return {"title": f"posecli 3d on the 4 demo videos (its default 2D mode: {mode})",
            "mode": mode, "two_d_s": round(job.seconds_2d, 1), "three_d_s": round(job.seconds_3d, 2),
            "ratio": round(ratio, 4), "ratio_met": ratio <= TARGETS["time_ratio"],
            **{k: f[k] for k in ("iqr_over_median", "off_20pct", "coverage", "reprojection_median_px",
                                 "reprojection_p90_px")},
            "opensim_ik": ik, "cameras": f["cameras"]}


SECTIONS = [("3d", posecli_default), ("3d_modes", modes), ("3d_videos", videos_end_to_end),
            ("3d_pose2sim", pose2sim_only)]


if __name__ == "__main__":
    rep = {"settings": {"repeat": 3, "warmup": 1}}
    print(json.dumps({name: fn(rep) for name, fn in SECTIONS}, indent=1, default=str))
