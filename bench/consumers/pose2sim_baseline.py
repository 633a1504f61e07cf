"""Pose2Sim's person association and triangulation of OpenPose JSON folders: the 3D baseline.

Run with the consumers' venv (Pose2Sim 0.10.49), not posecli's:

    .venv-consumers/bin/python bench/consumers/pose2sim_baseline.py \
        --calibration Calib.toml --openpose cam01/ cam02/ ... --project OUT/ [--pose-model COCO]

(``--openpose`` also takes posecli 2D JSON files, written out as OpenPose JSON first.)

Lays out a Pose2Sim project in OUT (the demo's Config.toml from the package, ``calibration/``,
``pose/camNN_json/``), runs ``personAssociation`` and ``triangulation`` with the demo's settings,
and prints one JSON line: {"trc": path, "seconds": ..., "log": ...}. ``--pose-model COCO`` reads
COCO-18 OpenPose JSON as is (ids 0-13 as OpenPose's COCO); ``COCO_17`` converts them first.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

# COCO-17 index -> COCO-18 index (COCO-18 has the neck at 1 and right/left swapped blocks).
MARKER = ".pose2sim_baseline"  # a project folder this script made (and may remake)
FRAME_RATE = 60  # the demo videos; Pose2Sim cannot read them from the JSON folders and would say 30
COCO17_FROM_COCO18 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]


def _to_coco17(src: Path, dst: Path) -> None:
    """Copy a folder of COCO-18 OpenPose JSON as COCO-17 (neck dropped, COCO's order)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.json")):
        data = json.loads(f.read_text())
        for person in data.get("people", []):
            kp = person["pose_keypoints_2d"]
            person["pose_keypoints_2d"] = [v for i in COCO17_FROM_COCO18 for v in kp[3 * i:3 * i + 3]]
        (dst / f.name).write_text(json.dumps(data))


def _from_posecli(src: Path, dst: Path) -> None:
    """A posecli 2D JSON as OpenPose 1.3 JSON per frame (what ``posecli video --format openpose``
    writes: ``pose_keypoints_2d`` x, y, c in the skeleton's order, 0, 0, 0 where missing)."""
    dst.mkdir(parents=True, exist_ok=True)
    data = json.loads(src.read_text())
    names = data["skeleton"]["keypoints"]
    for fr in data["frames"]:
        people = []
        for p in fr.get("people", []):
            kp = [p["keypoints"].get(n) or [0.0, 0.0, 0.0] for n in names]
            people.append({"person_id": [-1], "pose_keypoints_2d": [float(v) for k in kp for v in k[:3]]})
        name = f"{src.stem}_{int(fr['frame']):012d}_keypoints.json"
        (dst / name).write_text(json.dumps({"version": 1.3, "people": people}))


def layout(project: Path, calibration: Path, openpose: list[Path], pose_model: str) -> None:
    """A Pose2Sim project: Config.toml (the demo's), calibration/Calib.toml, pose/camNN_json/."""
    import Pose2Sim

    if project.exists() and any(project.iterdir()):
        if not (project / MARKER).is_file():  # never delete a folder this script did not make
            raise ValueError(f"{project}: not empty and not a project of this script; give a new folder")
        shutil.rmtree(project)
    (project / "calibration").mkdir(parents=True)
    (project / MARKER).write_text("made by bench/consumers/pose2sim_baseline.py; remade on each run\n")
    demo = Path(Pose2Sim.__file__).resolve().parent / "Demo_SinglePerson" / "Config.toml"
    shutil.copy(demo, project / "Config.toml")
    shutil.copy(calibration, project / "calibration" / "Calib.toml")
    for i, folder in enumerate(openpose, 1):
        dst = project / "pose" / f"cam{i:02d}_json"
        if folder.is_file():  # a posecli 2D JSON
            _from_posecli(folder, dst)
            folder = dst
            if pose_model.upper() != "COCO_17":
                continue
            tmp = dst.with_name(dst.name + "_coco18")
            dst.rename(tmp)
            folder = tmp
        if pose_model.upper() == "COCO_17":
            _to_coco17(folder, dst)
            if folder.name.endswith("_coco18"):
                shutil.rmtree(folder)
        else:
            shutil.copytree(folder, dst)


def run(project: Path, pose_model: str) -> dict:
    from Pose2Sim import Pose2Sim

    config = {
        "project": {"project_dir": str(project), "frame_range": "all", "frame_rate": FRAME_RATE},
        "pose": {"pose_model": pose_model},
        "triangulation": {"make_c3d": False, "show_interp_indices": False},
        "logging": {"use_custom_logging": True},
    }
    t0 = time.perf_counter()
    Pose2Sim.personAssociation(config)
    Pose2Sim.triangulation(config)
    seconds = time.perf_counter() - t0
    trcs = sorted((project / "pose-3d").glob("*.trc"))
    if not trcs:
        raise SystemExit(f"Error: {project}: Pose2Sim wrote no TRC")
    return {"trc": str(trcs[0]), "seconds": round(seconds, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calibration", type=Path, required=True)
    ap.add_argument("--openpose", type=Path, nargs="+", required=True, help="per camera, in order: an OpenPose JSON folder (COCO-18) or a posecli 2D JSON file")
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--pose-model", default="COCO", choices=["COCO", "COCO_17"])
    ap.add_argument("--frame-range", default="all", help="'all' or Pose2Sim's 'auto' (trims bad frames)")
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    log = args.project.parent / f"{args.project.name}.log"
    layout(args.project, args.calibration, args.openpose, args.pose_model)
    logging.basicConfig(filename=log, level=logging.INFO, format="%(message)s", force=True)
    result = run(args.project, args.pose_model)
    result["log"] = str(log)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    from _cli import run_main  # this script's folder is on sys.path

    run_main(main)
