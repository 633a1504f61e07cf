"""Pose of every photo in a folder, into one CSV: one row per person and keypoint.

    python examples/folder_to_csv.py PHOTO_DIR poses.csv

Columns: file, person, keypoint, x, y, score (missing keypoints are left out).
"""

import csv
import sys
from pathlib import Path

import posecli


def main(folder: str, out_csv: str) -> int:
    estimator = posecli.PoseEstimator()  # the default model, on CUDA if it loads, else the CPU
    photos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    with open(out_csv, "w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(["file", "person", "keypoint", "x", "y", "score"])
        for photo in photos:
            try:
                image = posecli.read_image(photo)
            except posecli.InputError as err:  # one bad photo should not stop the folder
                print(f"skipped {err}", file=sys.stderr)
                continue
            frame = estimator(image, source=photo.name)
            for i, person in enumerate(frame.people):
                for name in person.names:
                    kp = person.keypoint(name)  # (x, y, score) or None when missing
                    if kp is not None:
                        rows.writerow([photo.name, i, name, f"{kp[0]:.1f}", f"{kp[1]:.1f}", f"{kp[2]:.3f}"])
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
