"""A plain, slow reference parser: the OpenPose steps written out with loops over cells,
candidates and people, for the fast parser (:func:`posecli.parser.parse`) to match.

No smoothing, no upsampling, no screens: a peak is a map cell above ``PEAK_THRESHOLD`` and
no lower than its eight neighbours, placed at the centroid of its 3 x 3 neighbourhood; a
limb between two candidates is scored by reading the PAF at the nearest cell of ``SAMPLES``
evenly spaced points; limbs are accepted strongest first, one per candidate; people grow
limb by limb.
"""

from __future__ import annotations

import numpy as np

from posecli.maps import rescale
from posecli.skeleton import Skeleton

PEAK_THRESHOLD = 0.1  # heatmap value a peak must exceed
SAMPLES = 10  # points read along each candidate limb
PAF_THRESHOLD = 0.05  # a sample counts when the PAF along the limb exceeds this
MIN_ABOVE = 0.8  # ... and more than this fraction of the samples must count
MIN_PARTS = 4  # people with fewer parts are dropped
MIN_SCORE = 0.4  # people scoring less are dropped


def find_peaks(heatmap: np.ndarray, stride: int) -> list[tuple[float, float, float]]:
    """(x, y, score) in input pixels of each local maximum of one (H, W) heatmap."""
    h, w = heatmap.shape
    peaks = []
    for i in range(h):
        for j in range(w):
            value = heatmap[i, j]
            if value <= PEAK_THRESHOLD:
                continue
            around = heatmap[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
            if value >= around.max():
                rows, cols = np.mgrid[max(i - 1, 0):min(i + 2, h), max(j - 1, 0):min(j + 2, w)]
                weight = np.clip(around, 0, None)
                centroid = (np.sum(weight * cols) / weight.sum(), np.sum(weight * rows) / weight.sum())
                x, y = rescale(centroid, stride)
                peaks.append((float(x), float(y), float(value)))
    return peaks


def limb_score(paf_x: np.ndarray, paf_y: np.ndarray, a, b, stride: int) -> float | None:
    """Mean PAF component along a -> b over SAMPLES points; None when too few samples agree."""
    h, w = paf_x.shape
    a, b = np.array(a[:2]), np.array(b[:2])
    length = np.linalg.norm(b - a)
    if length == 0:
        return None
    unit = (b - a) / length
    dots = []
    for t in np.linspace(0.0, 1.0, SAMPLES):
        u, v = np.rint(rescale(a + t * (b - a), 1 / stride)).astype(int)
        u, v = min(max(u, 0), w - 1), min(max(v, 0), h - 1)
        dots.append(paf_x[v, u] * unit[0] + paf_y[v, u] * unit[1])
    dots = np.array(dots)
    if (dots > PAF_THRESHOLD).sum() <= MIN_ABOVE * SAMPLES:
        return None
    return float(dots.mean())


def reference_parse(heatmaps, pafs, skeleton: Skeleton, stride: int) -> list[dict]:
    """People as ``{"parts": {part: (x, y, score)}, "score": s}``, strongest first."""
    candidates = [find_peaks(heatmaps[k], stride) for k in range(skeleton.num_parts)]
    people: list[dict] = []  # "parts": part -> candidate index, "limbs": limb scores
    for limb, (a, b) in enumerate(skeleton.limbs):
        cx, cy = skeleton.paf_channels[limb]
        scored = []
        for ia, ca in enumerate(candidates[a]):
            for ib, cb in enumerate(candidates[b]):
                s = limb_score(pafs[cx], pafs[cy], ca, cb, stride)
                if s is not None and s > 0:
                    scored.append((s, ia, ib))
        used_a, used_b = set(), set()
        for s, ia, ib in sorted(scored, reverse=True):
            if ia in used_a or ib in used_b:
                continue
            used_a.add(ia)
            used_b.add(ib)
            owners = [p for p in people if p["parts"].get(a) == ia or p["parts"].get(b) == ib]
            if not owners:  # a new person
                people.append({"parts": {a: ia, b: ib}, "limbs": [s]})
            elif len(owners) == 1:  # grows by the other end, unless it has that part already
                owner = owners[0]
                if owner["parts"].get(a, ia) == ia and owner["parts"].get(b, ib) == ib:
                    owner["parts"].update({a: ia, b: ib})
                    owner["limbs"].append(s)
            elif not set(owners[0]["parts"]) & set(owners[1]["parts"]):  # the limb joins two pieces
                owners[0]["parts"].update(owners[1]["parts"])
                owners[0]["limbs"] += owners[1]["limbs"] + [s]
                people.remove(owners[1])
    found = []
    for p in people:
        parts = {k: candidates[k][i] for k, i in p["parts"].items()}
        score = (sum(c[2] for c in parts.values()) + sum(p["limbs"])) / len(parts)
        if len(parts) >= MIN_PARTS and score >= MIN_SCORE:
            found.append({"parts": parts, "score": score})
    return sorted(found, key=lambda p: -p["score"])
