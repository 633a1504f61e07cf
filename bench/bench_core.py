"""Core bench sections: network, per-stage times, image path, parser scaling, COCO eval.

Everything runs on the ONNX CPU path (``device="cpu"``) with the default model from the
model store (``$POSECLI_MODELS``): ``human-pose-estimation-0001.onnx`` (fp32) and, when
imported, ``.int8.onnx``. The "default" precision is what ``precision="auto"`` picks on the
CPU (INT8 when it is in the store). Photos are the COCO val2017 mini set in ../shared.
"""

from __future__ import annotations

import functools
import math
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posecli.formats.records import coco_records, frame_record
from posecli.formats.render import Renderer
from posecli.formats.writers import JsonStream
from posecli.inference.estimator import PoseEstimator
from posecli.maps import letterbox
from posecli.network.tensor import to_tensor
from posecli.io.images import read_image
from posecli.network.metadata import DEFAULT_SIZE_HW as NATIVE_HW  # the default model's input
from posecli.network.session import PoseModel
from posecli.network.store import DEFAULT_MODEL, model_path
from posecli.parser import PRESETS, get_preset, parse
from posecli.skeleton import COCO18
from posecli.maps import render_heatmaps, render_pafs
from tests.helpers import TEMPLATE

from . import MINI, ms, paired_times, settings, timings

STRIDE = 8
PEOPLE_COUNTS = (1, 5, 10, 20, 50)
SIGMA = 7.0  # heatmap Gaussian sigma of the generated maps, input pixels
LIMB_WIDTH = 8.0  # PAF half width of the generated maps, input pixels
MULTI_SCALES = (1.0, 0.75, 0.5)
UP_SCALES = (1.0, 1.5)  # the mini set's photos are taller than the input: scales above 1 add detail

# Issue 8 targets.
PARSER_MS_TARGET = 2.0  # ms per frame at 10 people
PARSER_FRACTION_TARGET = 0.05  # of the network's time at 10 people
IMAGE_PATH_RATIO_TARGET = 1.15  # (read + preprocess + network + parse) / network
AP_TARGET = 0.60  # default preset, mini set, single scale


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------
def precisions() -> list[str]:
    """Precisions of the default model in the store, float32 first."""
    return [p for p in ("fp32", "int8") if model_path(DEFAULT_MODEL, p).exists()]


def default_precision() -> str:
    """What ``precision="auto"`` picks on the CPU."""
    return "int8" if "int8" in precisions() else "fp32"


@functools.lru_cache(maxsize=None)
def _model(precision: str) -> PoseModel:
    # one runtime for every figure here (these sections measure posecli's own code around the
    # network; the runtimes are compared in the runtime_* sections)
    return PoseModel.load(None, device="cpu", precision=precision, runtime="onnxruntime")


def _photos() -> list[Path]:
    photos = sorted(MINI.glob("*.jpg"))
    if not photos:
        raise FileNotFoundError(f"no photos in {MINI} (set POSECLI_SHARED)")
    return photos


def _network_ms(report: dict, precision: str) -> float | None:
    """The network section's median at the native input for ``precision``, if measured."""
    for row in report.get("sections", {}).get("network", {}).get("rows", []):
        if row.get("precision") == precision:
            return row.get("median_ms")
    return None


# ---------------------------------------------------------------------------------------------
# (3) The network alone at the native input
# ---------------------------------------------------------------------------------------------
def network(report: dict) -> dict:
    repeat, warmup = settings(report)
    h, w = NATIVE_HW
    photo = cv2.resize(read_image(_photos()[0]), (w, h), interpolation=cv2.INTER_AREA)
    rows = []
    for prec in precisions():
        model = _model(prec)
        x = to_tensor(photo, model.info)
        t = timings(lambda: model.run(x), repeat=2 * repeat, warmup=warmup + 1)
        rows.append({
            "precision": prec, "input": f"1x3x{h}x{w}", "median_ms": ms(statistics.median(t)),
            "min_ms": ms(min(t)), "max_ms": ms(max(t)), "fps": round(1 / statistics.median(t), 2),
            "provider": model.provider,
        })
    out = {"title": "Network alone (ONNX Runtime, CPU, native 256x456 input)", "rows": rows}
    by = {r["precision"]: r["median_ms"] for r in rows}
    if "fp32" in by and "int8" in by:
        out["int8_speedup_vs_fp32"] = round(by["fp32"] / by["int8"], 2)
    return out


# ---------------------------------------------------------------------------------------------
# (1) Per-stage time per frame
# ---------------------------------------------------------------------------------------------
def stages(report: dict) -> dict:
    repeat, warmup = settings(report)
    prec = default_precision()
    est = PoseEstimator(_model(prec))
    info = est.model.info
    renderer = Renderer()
    names = ("decode", "preprocess", "network", "parse", "render", "write")
    per_photo = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        stream = JsonStream(Path(tmp) / "frames.json", {"version": "bench"}, key="images")
        for path in _photos():
            image = read_image(path)
            padded, _ = letterbox(image, est.height, info.stride, info.pad_value)
            tensor = to_tensor(padded, info)
            maps = est.maps(image)
            frame = est.parse(maps, source=str(path))

            def preprocess():
                p, _ = letterbox(image, est.height, info.stride, info.pad_value)
                return to_tensor(p, info)

            per_photo["decode"].append(statistics.median(timings(lambda: read_image(path), repeat, warmup)))
            per_photo["preprocess"].append(statistics.median(timings(preprocess, repeat, warmup)))
            per_photo["network"].append(statistics.median(timings(lambda: est.model.run(tensor), repeat, warmup)))
            per_photo["parse"].append(statistics.median(timings(lambda: est.parse(maps), repeat, warmup)))
            per_photo["render"].append(
                statistics.median(timings(lambda: renderer(image, frame.people), repeat, warmup)))
            per_photo["write"].append(
                statistics.median(timings(lambda: stream.add(frame_record(frame)), repeat, warmup)))
        stream.close()
    mean = {n: sum(v) / len(v) for n, v in per_photo.items()}
    total = sum(mean.values())
    rows = [{"stage": n, "ms_per_frame": ms(mean[n], 3), "share_pct": round(100 * mean[n] / total, 1)}
            for n in names]
    rows.append({"stage": "total", "ms_per_frame": ms(total, 3), "share_pct": 100.0})
    return {
        "title": f"Per-stage time per frame ({prec} model, default parser, mini-set photos)",
        "notes": [
            "Mean over the mini set's photos of each stage's median; photos 333-429 px tall, "
            f"network input height {est.height} (width follows the aspect ratio).",
            "write = one frame's posecli JSON record streamed to an open file (the fsync happens once per file).",
        ],
        "precision": prec,
        "photos": len(per_photo["decode"]),
        "rows": rows,
        "fps_all_stages": round(1 / total, 2),
    }


# ---------------------------------------------------------------------------------------------
# (4) Whole image path vs the network alone
# ---------------------------------------------------------------------------------------------
def image_path(report: dict) -> dict:
    repeat, warmup = settings(report)
    rows = []
    for prec in precisions():
        est = PoseEstimator(_model(prec))
        info = est.model.info
        whole_s = net_s = 0.0
        for path in _photos():
            padded, _ = letterbox(read_image(path), est.height, info.stride, info.pad_value)
            tensor = to_tensor(padded, info)
            t = paired_times({
                "whole": lambda: est(read_image(path), source=str(path)),
                "network": lambda: est.model.run(tensor),
            }, repeat=repeat, warmup=warmup)
            whole_s += t["whole"]
            net_s += t["network"]
        n = len(_photos())
        rows.append({
            "precision": prec, "whole_ms": ms(whole_s / n), "network_ms": ms(net_s / n),
            "ratio": round(whole_s / net_s, 3), "target": IMAGE_PATH_RATIO_TARGET,
            "met": whole_s / net_s <= IMAGE_PATH_RATIO_TARGET,
        })
    return {
        "title": "Whole image path (read, preprocess, network, parse) vs the network alone",
        "notes": ["Per photo of the mini set, the two interleaved (A B A B) so load changes hit both; "
                  "ratio of the summed medians. Default parser, single scale."],
        "rows": rows,
    }


# ---------------------------------------------------------------------------------------------
# (2) Parser time vs number of people
# ---------------------------------------------------------------------------------------------
# The standing-person template of the tests (body heights, neck at the origin, y down).
_TOP, _BOTTOM, _HALF_WIDTH = 0.13, 0.82, 0.22  # extent of TEMPLATE around the neck, body heights


def scene(n: int, size_hw=NATIVE_HW, seed: int = 0) -> np.ndarray:
    """(n, 18, 3) x, y, v people on a grid filling an input of ``size_hw``, as large as fits."""
    h, w = size_hw
    best = None
    for rows in range(1, n + 1):
        cols = math.ceil(n / rows)
        ch, cw = h / rows, w / cols
        height = min(0.9 * ch / (_TOP + _BOTTOM), 0.9 * cw / (2 * _HALF_WIDTH))
        if best is None or height > best[0]:
            best = (height, rows, cols)
    height, rows, cols = best
    ch, cw = h / rows, w / cols
    rng = np.random.default_rng(seed)
    template = np.array([TEMPLATE[p] for p in COCO18.parts])
    out = np.zeros((n, COCO18.num_parts, 3))
    for i in range(n):
        r, c = divmod(i, cols)
        neck = np.array([(c + 0.5) * cw, r * ch + (ch - (_TOP + _BOTTOM) * height) / 2 + _TOP * height])
        jitter = rng.normal(0, 0.015, template.shape)
        out[i, :, :2] = neck + (template + jitter) * height
        out[i, :, 2] = 1
    return out


def parser_scaling(report: dict) -> dict:
    repeat, warmup = settings(report)
    h, w = NATIVE_HW
    size = (h // STRIDE, w // STRIDE)
    rows = []
    times: dict[str, dict[int, float]] = {}
    best: dict[str, dict[int, float]] = {}
    for n in PEOPLE_COUNTS:
        kp = scene(n)
        hm = render_heatmaps(kp, size, STRIDE, SIGMA)
        paf = render_pafs(kp, COCO18, size, STRIDE, LIMB_WIDTH, end_margin=LIMB_WIDTH)
        row = {"people": n, "person_height_px": round(float(kp[0, :, 1].max() - kp[0, :, 1].min()), 1)}
        for preset in PRESETS:
            cfg = get_preset(preset)
            t0 = time.perf_counter()
            found = len(parse(hm, paf, COCO18, cfg, stride=STRIDE))
            # A millisecond call needs many samples for a stable median (as a video's frames
            # give it): about half a second of calls, at least `repeat`, at most 300.
            n_runs = min(300, max(repeat, int(0.5 / max(time.perf_counter() - t0, 1e-4))))
            ts = timings(lambda: parse(hm, paf, COCO18, cfg, stride=STRIDE), n_runs, max(warmup, 5))
            t = statistics.median(ts)
            times.setdefault(preset, {})[n] = t
            best.setdefault(preset, {})[n] = min(ts)
            row[f"{preset}_ms"] = ms(t, 3)
            row[f"{preset}_found"] = found
        rows.append(row)
    growth = []
    for preset, by_n in times.items():
        # Each limb scores every (part a candidate, part b candidate) pair: N people give N^2
        # candidate pairs per limb, so linear in the candidates means t(50)/t(10) <= 25.
        growth.append({
            "preset": preset,
            "ms_at_10": ms(by_n[10], 3),
            "min_ms_at_10": ms(best[preset][10], 3),
            "ms_per_person_10": ms(by_n[10] / 10, 4),
            "ms_per_person_50": ms(by_n[50] / 50, 4),
            "t50_over_t10": round(by_n[50] / by_n[10], 2),
            "candidate_pairs_ratio": 25.0,
        })
    fractions = []
    for prec in precisions():
        net = _network_ms(report, prec)
        if net:
            for preset, by_n in times.items():
                frac = 1000 * by_n[10] / net
                fractions.append({
                    "precision": prec, "preset": preset, "network_ms": net,
                    "parse_ms_10_people": ms(by_n[10], 3), "fraction_pct": round(100 * frac, 2),
                    "target_pct": 100 * PARSER_FRACTION_TARGET, "met": frac < PARSER_FRACTION_TARGET,
                })
    return {
        "title": "Parser time vs number of people (generated maps at the default model's resolution)",
        "notes": [
            f"Maps {size[0]}x{size[1]} (input {h}x{w}, stride {STRIDE}) rendered by posecli.train.targets from "
            f"standing people on a grid (sigma {SIGMA} px, PAF half width {LIMB_WIDTH} px); "
            "the more people, the smaller they are. Median of repeated parse() calls.",
            "Every limb scores all pairs of its two parts' candidates: N people give N^2 candidate "
            "pairs per limb, 25x more at 50 people than at 10. t50_over_t10 at or below "
            "candidate_pairs_ratio means the parser grows no worse than linearly with the candidates "
            "per part pair (below 5 would be linear in the people). min_ms_at_10: the fastest run, "
            "a check on load noise.",
        ],
        "rows": rows,
        "growth": growth,
        "fraction_of_network_at_10_people": fractions,
    }


# ---------------------------------------------------------------------------------------------
# (5) COCO keypoint AP on the mini set
# ---------------------------------------------------------------------------------------------
def eval_mini(report: dict) -> dict:
    from posecli.evaluate import coco_images, evaluate_detections, evaluate_estimator, load_annotations

    repeat, warmup = settings(report)
    data = load_annotations(MINI / "person_keypoints.json")
    items = coco_images(data, MINI)
    images = [read_image(p) for _, p in items]
    presets, variants = [], []
    for prec in precisions():
        model = _model(prec)
        base = PoseEstimator(model)
        t0 = time.perf_counter()
        maps = [base.maps(im) for im in images]
        net_ms = ms((time.perf_counter() - t0) / len(images), 1)
        for preset in PRESETS:
            est = PoseEstimator(model, parser=preset)
            dets, parse_s = [], 0.0
            for (image_id, path), m in zip(items, maps):
                parse_s += statistics.median(timings(lambda: est.parse(m), max(3, repeat // 2), 1))
                dets.extend(coco_records(est.parse(m, source=str(path)), image_id))
            res = evaluate_detections(data, dets)
            presets.append({
                "precision": prec, "parser": preset, "AP": _r(res.ap), "AP50": _r(res.ap50),
                "AP75": _r(res.ap75), "APM": _r(res.apm), "APL": _r(res.apl), "AR": _r(res.ar),
                "parse_ms_per_image": ms(parse_s / len(items), 2), "network_ms_per_image": net_ms,
            })
        for label, scales, flip in (
            ("single scale", (1.0,), False),
            ("multi-scale " + ",".join(f"{s:g}" for s in MULTI_SCALES), MULTI_SCALES, False),
            ("multi-scale " + ",".join(f"{s:g}" for s in UP_SCALES), UP_SCALES, False),
            ("flip", (1.0,), True),
            ("multi-scale + flip", MULTI_SCALES, True),
        ):
            est = PoseEstimator(model, scales=scales, flip=flip)
            res = evaluate_estimator(est, data, MINI)
            per = res.as_dict()["ms_per_image"]
            variants.append({
                "precision": prec, "variant": label, "AP": _r(res.ap), "AP50": _r(res.ap50),
                "AP75": _r(res.ap75), "APM": _r(res.apm), "APL": _r(res.apl), "AR": _r(res.ar),
                "images_per_s": round(res.images_per_s, 2), "network_ms": per["network"], "parse_ms": per["parse"],
            })
    return {
        "title": "COCO keypoint AP (OKS) on the val2017 mini set",
        "notes": [
            f"{len(items)} images, {len(data['annotations'])} annotated people; pycocotools COCOeval. "
            f"Network input height {NATIVE_HW[0]} (the model's), CPU.",
            "parsers: one network pass per image, each preset parsing the same maps "
            "(parse_ms_per_image = median of repeated parses, summed over images / images).",
            "variants: `posecli eval` runs with the default parser (images_per_s includes reading).",
        ],
        "parsers": presets,
        "variants": variants,
    }


def _r(v: float) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 4)


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------
def targets(report: dict) -> dict:
    """The issue's targets against the figures above (ratios; nothing asserted)."""
    sec = report.get("sections", {})
    prec = default_precision()
    rows = []

    def add(name, value, limit, lower_is_better=True):
        if value is None:
            rows.append({"target": name, "value": None, "limit": limit, "ratio": None, "met": None})
            return
        ratio = value / limit
        met = value <= limit if lower_is_better else value >= limit
        rows.append({"target": name, "value": value, "limit": limit, "ratio": round(ratio, 3), "met": met})

    growth = {g["preset"]: g for g in sec.get("parser_scaling", {}).get("growth", [])}
    add("parser ms/frame at 10 people (default preset)", growth.get("default", {}).get("ms_at_10"), PARSER_MS_TARGET)
    frac = [f for f in sec.get("parser_scaling", {}).get("fraction_of_network_at_10_people", [])
            if f["preset"] == "default"]
    for f in frac:
        add(f"parser % of network at 10 people ({f['precision']})", f["fraction_pct"], 100 * PARSER_FRACTION_TARGET)
    add("parser t(50)/t(10) people (linear in candidate pairs = 25)",
        growth.get("default", {}).get("t50_over_t10"), 25.0)
    for r in sec.get("image_path", {}).get("rows", []):
        add(f"image path / network ({r['precision']})", r["ratio"], IMAGE_PATH_RATIO_TARGET)
    for r in sec.get("eval", {}).get("parsers", []):
        if r["parser"] == "default" and r["precision"] == prec:
            add(f"AP default preset, single scale ({prec})", r["AP"], AP_TARGET, lower_is_better=False)
    return {
        "title": "Targets (issue 8)",
        "notes": [f"Default precision on the CPU: {prec}. ratio = value / limit."],
        "rows": rows,
    }


SECTIONS = [
    ("network", network),
    ("stages", stages),
    ("image_path", image_path),
    ("parser_scaling", parser_scaling),
    ("eval", eval_mini),
    ("targets", targets),
]
