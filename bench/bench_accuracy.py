"""COCO keypoint AP per mode and per ingredient on both shared COCO sets.

``python -m bench eval_modes``: every mode of :mod:`posecli.inference.modes` and the
ingredients one at a time (a higher first-pass resolution, flip, the zoom-in pass), each run
with ``posecli eval``'s code path on the default precision of the CPU, on
../shared/data/coco-train2017-mini80 (80 photos, 86 people, many small) and
../shared/data/coco-val2017-mini (4 photos, 12 people, mostly large). images_per_s
includes reading the photos; zoom_ms is the zoom-in pass's share (crops, its one network
run, parsing, merging) per image.
"""

from __future__ import annotations

from posecli.evaluate import evaluate_estimator
from posecli.inference.estimator import PoseEstimator

from . import SHARED
from .bench_core import _model, _r, default_precision

SETS = {
    "mini80": SHARED / "data" / "coco-train2017-mini80",
    "mini": SHARED / "data" / "coco-val2017-mini",
}

# (label, PoseEstimator keyword arguments): the modes, then each ingredient on its own.
VARIANTS = (
    ("mode fast", {"mode": "fast"}),
    ("mode balanced", {"mode": "balanced"}),
    ("mode accurate", {"mode": "accurate"}),
    ("fast + height 368", {"mode": "fast", "height": 368}),
    ("fast + flip", {"mode": "fast", "flip": True}),
    ("fast + height 368 + flip", {"mode": "fast", "height": 368, "flip": True}),
    ("fast + zoom-in (= balanced)", {"mode": "fast", "zoom": True}),
    ("balanced + height 368", {"mode": "balanced", "height": 368}),
)


def eval_modes(report: dict) -> dict:
    prec = default_precision()
    model = _model(prec)
    rows = []
    for set_name, folder in SETS.items():
        annotations = folder / "person_keypoints.json"
        if not annotations.is_file():
            raise FileNotFoundError(f"{annotations} not found (set POSECLI_SHARED)")
        for label, kwargs in VARIANTS:
            est = PoseEstimator(model, **kwargs)
            res = evaluate_estimator(est, annotations, folder)
            per = res.as_dict()["ms_per_image"]
            rows.append({
                "set": set_name, "variant": label, "AP": _r(res.ap), "AP50": _r(res.ap50), "APM": _r(res.apm),
                "APL": _r(res.apl), "AR": _r(res.ar), "images_per_s": round(res.images_per_s, 2),
                "network_ms": per["network"], "parse_ms": per["parse"], "zoom_ms": per.get("zoom"),
                "zoom_crops_per_image": res.as_dict().get("zoom_crops_per_image"),
            })
    return {
        "title": "COCO keypoint AP per mode and ingredient (both shared sets)",
        "notes": [
            (f"precision {prec} on the CPU, default parser; pycocotools COCOeval (OKS). "
             "mini80: 80 COCO train2017 photos, 86 people, many small; mini: 4 COCO val2017 photos, 12 people."),
            ("The modes keep the model's height (256) for the first pass: a global upscale (height 368) helps "
             "small people and hurts large, overlapping ones; the zoom-in pass sizes each small person instead."),
        ],
        "rows": rows,
    }


SECTIONS = [("eval_modes", eval_modes)]
