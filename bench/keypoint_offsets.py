"""Where keypoints sit against their annotations: the mean offset per part and per person size.

``python -m bench.keypoint_offsets DETECTIONS ANNOTATIONS`` reads COCO keypoint results (what
``posecli eval --out`` or ``posecli image --format coco`` writes) and the annotation file,
pairs each annotated person with the detection of highest keypoint similarity (OKS >= 0.5),
and prints, in image pixels, the median x and y offset (detection minus annotation) per
part and per person size, and the mean OKS the matched people would have with every
keypoint moved down by 0 to 2 pixels. docs/accuracy.md ("A vertical offset we measured and
did not correct") was measured with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from pycocotools.cocoeval import Params

from posecli.errors import PoseError
from posecli.evaluate import MAX_ANNOTATION_BYTES, check_detections, load_annotations
from posecli.io.jsonfile import read_json
from posecli.skeleton import COCO17_NAMES

#: COCO's per-keypoint OKS sigmas, in COCO's keypoint order.
SIGMAS = np.asarray(Params(iouType="keypoints").kpt_oks_sigmas, dtype=float)
SIZES = ((0, 60, "small (sqrt(area) < 60 px)"), (60, 120, "middle (60-120 px)"), (120, 1e9, "large (>= 120 px)"))
SHIFTS = (0.0, 0.5, 1.0, 1.5, 2.0)


def oks(det: np.ndarray, gt: np.ndarray, area: float, dy: float = 0.0) -> float:
    """COCO's keypoint similarity of (17, 3) ``det`` to ``gt`` over gt's labelled keypoints,
    with ``det`` moved ``dy`` pixels down."""
    seen = gt[:, 2] > 0
    d2 = (det[:, 0] - gt[:, 0]) ** 2 + (det[:, 1] + dy - gt[:, 1]) ** 2
    return float(np.exp(-d2 / (2 * max(area, 1.0) * (2 * SIGMAS) ** 2))[seen].mean())


def matched_pairs(detections: list[dict], annotations: dict, min_oks: float = 0.5):
    """(detection (17, 3), annotation (17, 3), area) for each annotated person whose best
    detection in its image reaches ``min_oks``."""
    by_image: dict[int, list[np.ndarray]] = {}
    for d in detections:
        by_image.setdefault(d["image_id"], []).append(np.asarray(d["keypoints"], float).reshape(17, 3))
    for a in annotations["annotations"]:
        if a.get("iscrowd") or a.get("num_keypoints", 0) == 0:
            continue
        gt = np.asarray(a["keypoints"], float).reshape(17, 3)
        scored = [(oks(d, gt, a["area"]), i, d) for i, d in enumerate(by_image.get(a["image_id"], []))]
        if scored:
            best, _, det = max(scored, key=lambda t: t[:2])
            if best >= min_oks:
                yield det, gt, float(a["area"])


def report(detections: list[dict], annotations: dict) -> dict:
    """Median offsets per part and per size, and mean OKS per downward shift per size."""
    pairs = list(matched_pairs(detections, annotations))
    rows = []  # part, dx, dy, size
    for det, gt, area in pairs:
        both = (gt[:, 2] > 0) & (det[:, 2] > 0)
        for k in np.flatnonzero(both):
            rows.append((k, det[k, 0] - gt[k, 0], det[k, 1] - gt[k, 1], np.sqrt(area)))
    r = np.asarray(rows, float).reshape(-1, 4)
    out: dict = {"people": len(pairs), "keypoints": len(r),
                 "median_dx": float(np.median(r[:, 1])) if len(r) else None,
                 "median_dy": float(np.median(r[:, 2])) if len(r) else None, "parts": {}, "sizes": {}}
    for k, name in enumerate(COCO17_NAMES):
        sel = r[r[:, 0] == k]
        if len(sel):
            out["parts"][name] = {"n": len(sel), "median_dx": float(np.median(sel[:, 1])),
                                  "median_dy": float(np.median(sel[:, 2]))}
    for lo, hi, label in SIZES:
        group = [(det, gt, area) for det, gt, area in pairs if lo <= np.sqrt(area) < hi]
        if group:
            out["sizes"][label] = {"people": len(group), "mean_oks_by_dy": {
                s: round(float(np.mean([oks(det, gt, area, s) for det, gt, area in group])), 4) for s in SHIFTS}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("detections", type=Path, help="COCO keypoint results (a JSON list)")
    ap.add_argument("annotations", type=Path, help="COCO keypoint annotation file")
    args = ap.parse_args(argv)
    try:
        dets = read_json(args.detections, max_bytes=MAX_ANNOTATION_BYTES, what="COCO results file")
        if isinstance(dets, dict):  # a results file that wraps them: {"detections": [...], ...}
            dets = dets.get("detections")
        if not isinstance(dets, list):
            raise PoseError("not COCO keypoint results (a list of detections)", path=args.detections)
        try:
            dets = check_detections(dets)
        except PoseError as exc:
            raise PoseError(exc.message, path=args.detections) from None
        annotations = load_annotations(args.annotations)
        for path, records in ((args.detections, dets), (args.annotations, annotations["annotations"])):
            if any(len(r["keypoints"]) != 3 * len(SIGMAS) for r in records):
                raise PoseError(f"keypoints must be {len(SIGMAS)} x, y, v triples (COCO-17)", path=path)
    except PoseError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report(dets, annotations), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
