"""COCO keypoint AP, AP75 and AP at OKS 0.9 per mode and per ingredient, and images/s.

``python -m bench eval_modes``: every mode of :mod:`posecli.inference.modes`, and the
ingredients one at a time on top of ``fast``, ``balanced`` or ``accurate`` (flip, a second
scale, the zoom-in pass, the peak threshold, the sub-pixel refinement), each run with
``posecli eval``'s code path on the default precision of the CPU, on the sets of
:mod:`bench.accuracy_sets`: mini (4 COCO val photos), train80 and its two fixed halves A
(choose) and B (confirm), and the crowded photos of both. AP75 and AP@0.9 show how
precisely keypoints are placed (AP averages it away). images/s: the variants timed in
turn, interleaved, photo by photo, on the first photos of train80 (reading included), on a
model without any cache.

Setting ``POSECLI_MAP_CACHE=<folder>`` answers the AP runs' network calls from an on-disk
cache (:mod:`bench.mapcache`): repeated runs then cost parser time only. The timings never
use it.
"""

from __future__ import annotations

import os
import time

from posecli.evaluate import evaluate_detections, evaluate_estimator
from posecli.formats.records import COCO_FULL_RANK_PARTS
from posecli.inference.estimator import PoseEstimator

from .accuracy_sets import ROOT, describe, measured_sets
from .bench_core import _model, default_precision

# (label, PoseEstimator keyword arguments): the modes, then each ingredient on its own.
VARIANTS = (
    ("mode fast", {"mode": "fast"}),
    ("mode balanced", {"mode": "balanced"}),
    ("mode accurate", {"mode": "accurate"}),
    ("fast + flip", {"mode": "fast", "flip": True}),
    ("fast + scale 1.5", {"mode": "fast", "scales": (1.0, 1.5)}),
    ("fast + zoom-in (= balanced)", {"mode": "fast", "zoom": True}),
    ("accurate, peaks down to 0.05", {"mode": "accurate", "parser_options": {"peak_threshold": 0.05}}),
    ("accurate without the keypoint offset", {"mode": "accurate", "parser_options": {"peak_offset_y": 0.0}}),
    ("balanced + flip (accurate before issue 29)", {"mode": "balanced", "flip": True}),
    ("balanced - sub-pixel", {"mode": "balanced", "parser_options": {"refine": "none"}}),
    ("balanced + full-Hessian sub-pixel (DARK)", {"mode": "balanced", "parser_options": {"refine": "log_hessian"}}),
)
#: The whole of train80 is scored too (the README's figure); its halves are the decision sets.
TRAIN = ("train80-A", "train80-B")


def _sets() -> dict[str, dict]:
    sets = measured_sets()
    a, b = (sets[n] for n in TRAIN)
    whole = {**a, "images": a["images"] + b["images"], "annotations": a["annotations"] + b["annotations"]}
    return {"mini": sets["mini"], "train80": whole, **{n: sets[n] for n in (*TRAIN, "crowded")}}


def _images_per_s(model, sets: dict, repeat: int, photos: int) -> dict[str, float]:
    """Label -> images/s, each variant timed photo by photo in turn (interleaved)."""
    paths = [ROOT / im["file_name"] for im in sets["train80"]["images"]][:photos]
    ests = {label: PoseEstimator(model, **kw) for label, kw in VARIANTS}
    for est in ests.values():  # warm-up: sessions, sizes
        est.estimate_file(paths[0])
    spent = dict.fromkeys(ests, 0.0)
    for _ in range(repeat):
        for path in paths:
            for label, est in ests.items():
                t0 = time.perf_counter()
                est.estimate_file(path)
                spent[label] += time.perf_counter() - t0
    return {label: repeat * len(paths) / s for label, s in spent.items()}


def _scoring_model(prec: str, model=None):
    """The model the AP runs use: ``model`` (None: the default one at ``prec``), or one
    answering from ``POSECLI_MAP_CACHE``."""
    cache = os.environ.get("POSECLI_MAP_CACHE")
    if not cache:
        return _model(prec) if model is None else model
    from posecli.network.session import PoseModel

    from .mapcache import cached

    # a model of its own: the timed one must never answer from the cache
    return cached(PoseModel.load(None, device="cpu", precision=prec, runtime="onnxruntime"), cache)


def _scores(scoring, kwargs: dict, sets: dict, *, mean_score: bool = False) -> dict:
    """Set name -> COCO metrics of one variant; every photo runs once, each set scores its own.

    ``mean_score``: rank the results by the people's mean part score, as the COCO format did
    before :func:`~posecli.formats.records.coco_score` lowered fragments."""
    everything = {**sets["mini"], "images": sets["mini"]["images"] + sets["train80"]["images"],
                  "annotations": sets["mini"]["annotations"] + sets["train80"]["annotations"]}
    found = evaluate_estimator(PoseEstimator(scoring, **kwargs), everything, ROOT).detections
    if mean_score:
        found = [{**d, "score": _mean_score(d)} for d in found]
    out = {}
    for set_name, data in sets.items():
        ids = {im["id"] for im in data["images"]}
        out[set_name] = evaluate_detections(data, [d for d in found if d["image_id"] in ids])
    return out


def _mean_score(detection: dict) -> float:
    """The mean part score behind a COCO result's score (:func:`coco_score` undone)."""
    found = sum(1 for x, y in zip(detection["keypoints"][0::3], detection["keypoints"][1::3]) if x or y)
    return detection["score"] * COCO_FULL_RANK_PARTS / found if 0 < found < COCO_FULL_RANK_PARTS else detection["score"]


def eval_modes(report: dict) -> dict:
    prec = default_precision()
    model = _model(prec)
    scoring = _scoring_model(prec, model)
    sets = _sets()
    rows = []
    for label, kwargs in VARIANTS:
        row: dict = {"variant": label}
        for set_name, res in _scores(scoring, kwargs, sets).items():
            row[f"{set_name} AP"] = round(res.ap, 3)
            row[f"{set_name} AP75"] = round(res.ap75, 3)
            row[f"{set_name} AP@0.9"] = round(res.ap90, 3)
        rows.append(row)
    quick = report.get("settings", {}).get("repeat", 7) <= 3  # --quick
    speed = _images_per_s(model, sets, repeat=1 if quick else 2, photos=8 if quick else 20)
    base = rows[0]
    for row in rows:
        ips = speed[row["variant"]]
        row["images/s"] = round(ips, 2)
        # AP gained on train80 per extra second per photo over fast (None for fast itself).
        extra_s = 1 / ips - 1 / speed[base["variant"]]
        gain = row["train80 AP"] - base["train80 AP"]
        row["train80 AP gain per s"] = round(gain / extra_s, 3) if extra_s > 1e-3 else None
    return {
        "title": "COCO keypoint AP, AP75, AP@0.9 and images/s per mode and ingredient",
        "notes": [
            f"precision {prec} on the CPU, default parser; pycocotools COCOeval (OKS); AP@0.9: AP at OKS 0.9 alone.",
            "sets: " + "; ".join(f"{n}: {describe(d)}" for n, d in sets.items()),
            ("train80-A/B: the photos of train80 by the parity of their rank in id order; choices are made "
             "on A and confirmed on B. crowded: photos with >= 3 people or two overlapping people."),
            ("images/s: variants timed in turn, photo by photo, on the first train80 photos (reading "
             "included); 'AP gain per s': train80 AP over fast's per extra second per photo."),
        ],
        "rows": rows,
    }


#: The choices between modes again at network heights around the model's: on sets this small
#: one person more or less above an OKS threshold moves AP by 0.01-0.04, so a choice should
#: hold on the mean over nearby heights, not on one height alone.
HEIGHTS = (240, 248, 256, 264, 272)
#: (label, PoseEstimator keyword arguments, rank COCO results by the mean part score)
HEIGHT_VARIANTS = (
    ("mode fast", {"mode": "fast"}, False),
    ("mode balanced", {"mode": "balanced"}, False),
    ("mode accurate", {"mode": "accurate"}, False),
    ("accurate, peaks down to 0.05", {"mode": "accurate", "parser_options": {"peak_threshold": 0.05}}, False),
    ("accurate without the keypoint offset", {"mode": "accurate", "parser_options": {"peak_offset_y": 0.0}}, False),
    ("balanced + flip (accurate before issue 29)", {"mode": "balanced", "flip": True}, False),
    ("fast, ranked by the mean part score", {"mode": "fast"}, True),
    ("balanced, ranked by the mean part score", {"mode": "balanced"}, True),
    ("accurate, ranked by the mean part score", {"mode": "accurate"}, True),
)


def eval_heights(report: dict) -> dict:
    prec = default_precision()
    scoring = _scoring_model(prec)
    sets = _sets()
    rows = []
    for label, kwargs, mean_score in HEIGHT_VARIANTS:
        per_height = [_scores(scoring, {**kwargs, "height": h}, sets, mean_score=mean_score) for h in HEIGHTS]
        row: dict = {"variant": label}
        for set_name in sets:
            aps = [res[set_name].ap for res in per_height]
            row[f"{set_name} AP mean"] = round(sum(aps) / len(aps), 3)
            row[f"{set_name} AP by height"] = " / ".join(f"{a:.3f}" for a in aps)
        row["train80 AP75 mean"] = round(sum(res["train80"].ap75 for res in per_height) / len(HEIGHTS), 3)
        rows.append(row)
    return {
        "title": "The mode choices at network heights " + ", ".join(map(str, HEIGHTS)) + " (COCO keypoint AP)",
        "notes": [
            f"precision {prec} on the CPU; each variant with its height set to each of {HEIGHTS}.",
            ("why: on sets this small one person more or less above an OKS threshold moves AP by 0.01-0.04 "
             "(the second scale at 1.4, 1.45, 1.5 and 1.6 gave train80 0.390, 0.414, 0.435, 0.406), so a "
             "choice is kept only where it holds on the mean over nearby heights."),
            ("'ranked by the mean part score': the same detections, with the COCO score the format wrote "
             "before fragments (fewer than 8 of 17 keypoints) were ranked lower."),
        ],
        "rows": rows,
    }


SECTIONS = [("eval_modes", eval_modes), ("eval_heights", eval_heights)]
