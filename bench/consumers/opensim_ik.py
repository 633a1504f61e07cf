"""OpenSim scaling and inverse kinematics of a TRC, through Pose2Sim's kinematics step (COCO-17 set-up).

Run with the consumers' venv (Pose2Sim 0.10.49, opensim 4.6):

    .venv-consumers/bin/python bench/consumers/opensim_ik.py markers.trc --out DIR

The TRC holds Pose2Sim's marker names (Nose, Neck, RShoulder, ... LAnkle) in Pose2Sim's axes (Y up).
Pose2Sim's own functions scale its simple model to the markers (height from the TRC) and run
OpenSim's InverseKinematicsTool with Pose2Sim's IK set-up for COCO-17 (the 14 markers above).
Prints one JSON line: {"frames", "rms_mean_m", "rms_median_m", "rms_max_m", "max_marker_m", "mot", "seconds"}
read from OpenSim's own per-frame report ("marker error: RMS = ..., max = ...").
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import statistics
import time
from pathlib import Path

POSE_MODEL = "COCO_17"  # Pose2Sim's marker, scaling and IK set-up files for these 14 markers
DEFAULT_HEIGHT_M = 1.7  # Pose2Sim's default when the height cannot be measured
MASS_KG = 70.0  # Pose2Sim demo's participant mass (no effect on kinematics)
_FRAME_LINE = re.compile(r"marker error: RMS = ([0-9.eE+-]+), max = ([0-9.eE+-]+)")


def run(trc: Path, out: Path, simple: bool = False) -> dict:
    import opensim
    from Pose2Sim.common import compute_height, read_trc
    from Pose2Sim.kinematics import get_opensim_setup_dir, perform_IK, perform_scaling

    out.mkdir(parents=True, exist_ok=True)
    local = out / trc.name  # Pose2Sim names its outputs after the TRC, beside nothing else
    shutil.copy(trc, local)
    log = out / "opensim_logs.txt"
    log.unlink(missing_ok=True)
    opensim.Logger.setLevelString("Info")
    opensim.Logger.removeFileSink()
    opensim.Logger.addFileSink(str(log))
    t0 = time.perf_counter()
    q, _, _, _, _ = read_trc(local)
    height = compute_height(q)
    height = float(height) if height and math.isfinite(height) else DEFAULT_HEIGHT_M
    setup = get_opensim_setup_dir()
    perform_scaling(local, POSE_MODEL, out, setup, use_simple_model=simple, subject_height=height,
                    subject_mass=MASS_KG)
    try:
        perform_IK(local, out, setup, POSE_MODEL)
    except RuntimeError:  # OpenSim says why in its log, not in the exception
        reasons = [ln for ln in log.read_text(errors="replace").splitlines() if "[error]" in ln or "Failed" in ln]
        raise SystemExit(f"Error: {trc}: OpenSim IK failed: {' | '.join(reasons[-2:])[-600:]}") from None
    seconds = time.perf_counter() - t0
    opensim.Logger.removeFileSink()
    rms, worst = [], []
    for line in log.read_text(errors="replace").splitlines():
        m = _FRAME_LINE.search(line)
        if m:
            rms.append(float(m.group(1)))
            worst.append(float(m.group(2)))
    if not rms:
        raise SystemExit(f"Error: {log}: OpenSim reported no marker errors")
    return {"frames": len(rms), "rms_mean_m": round(statistics.mean(rms), 4),
            "rms_median_m": round(statistics.median(rms), 4), "rms_max_m": round(max(rms), 4),
            "max_marker_m": round(max(worst), 4), "height_m": round(height, 3),
            "mot": str(out / (local.stem + ".mot")), "seconds": round(seconds, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trc", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="folder for the scaled model, .mot and OpenSim's log")
    ap.add_argument("--simple", action="store_true",
                    help="Pose2Sim's simple model (no muscles or constraints; >10x faster) instead of the demo's full one")
    args = ap.parse_args(argv)
    result = run(args.trc.resolve(), args.out.resolve(), args.simple)
    result["model"] = "simple" if args.simple else "full"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    from _cli import run_main  # this script's folder is on sys.path

    run_main(main)
