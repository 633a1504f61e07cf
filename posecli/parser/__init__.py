"""The OpenPose test-time parser: maps -> peaks -> limb scores -> greedy matching -> people.

``parse(heatmaps, pafs, skeleton)`` takes one image's network outputs at output stride s:
heatmaps (C >= K, H, W) and PAFs (>= 2L, H, W), and returns :class:`posecli.types.Person`
records in network-input pixels (map cell (i, j) is centred on input pixel
``(j s + (s - 1) / 2, i s + (s - 1) / 2)``, as :func:`posecli.maps.rescale` says). Mapping them
back to the original image is the caller's job (preprocess).

Scores: a keypoint's score is its heatmap peak value (clipped to [0, 1]); a person's score
is (sum of its parts' peak scores + sum of its limbs' scores) / number of parts, as in
OpenPose. People come out strongest first.

The steps, in :func:`parse_with_peaks`: 1. part candidates (:mod:`.peaks`: NMS on the
heatmaps, sub-pixel refinement); 2. every candidate pair of each limb scored by the PAF
line integral (:mod:`.limbs`) and matched, optimally or greedily (``config.matching``,
:mod:`.matching`); 3. people assembled
from the matched limbs (:mod:`.assemble`). Every threshold is a field of
:class:`ParserConfig`.

Example: one person rendered into maps from known keypoints comes back where it was::

    >>> import numpy as np
    >>> from posecli.maps import render_heatmaps, render_pafs
    >>> from posecli.skeleton import COCO18
    >>> xy = {"nose": (60, 28), "neck": (60, 40), "r_shoulder": (48, 41), "l_shoulder": (72, 41),
    ...       "r_elbow": (45, 60), "l_elbow": (75, 60), "r_hip": (53, 80), "l_hip": (67, 80)}
    >>> kp = np.zeros((1, COCO18.num_parts, 3))
    >>> for name, (x, y) in xy.items():
    ...     kp[0, COCO18.index(name)] = (x, y, 1)
    >>> heat = render_heatmaps(kp, (16, 16), stride=8, sigma=7.0)
    >>> pafs = render_pafs(kp, COCO18, (16, 16), stride=8, limb_width=8.0)
    >>> [person] = parse(heat, pafs, COCO18, stride=8)
    >>> person.num_visible, bool(np.nanmax(np.abs(person.xy - kp[0, :, :2])[person.visible]) < 1)
    (8, True)
"""

from __future__ import annotations

import numpy as np

from ..errors import ParserError
from ..skeleton import Skeleton
from ..types import Person
from ._scratch import scratch
from .assemble import assemble
from .config import PRESETS, ParserConfig, get_preset
from .limbs import limb_fields, match_greedy, score_pairs
from .matching import match_optimal
from .peaks import Peaks, find_peaks, upsample_hwc

__all__ = ["PRESETS", "ParserConfig", "Peaks", "get_preset", "parse", "parse_with_peaks"]

# Map values are confidences and unit-vector components; anything beyond this magnitude
# (and NaN) is treated as corrupt: NaN and +-inf become 0, the rest is clipped.
_MAP_LIMIT = 1e6


def _as_maps(maps, name: str, min_channels: int) -> np.ndarray:
    """(C, H, W) float32 view or copy of ``maps``; ParserError unless 3-D with enough channels."""
    try:
        arr = np.asarray(maps)
    except Exception as exc:  # ragged lists and other non-arrays
        raise ParserError(f"{name} is not an array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise ParserError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ParserError(f"{name} must be (C, H, W), got shape {arr.shape}")
    if arr.shape[0] < min_channels:
        raise ParserError(f"{name} has {arr.shape[0]} channels, the skeleton needs {min_channels}")
    return arr[:min_channels].astype(np.float32, copy=False)


def _sanitised(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when finite and in range, else a cleaned copy (inputs never change)."""
    if arr.size == 0:
        return arr
    lo, hi = float(arr.min()), float(arr.max())
    if -_MAP_LIMIT <= lo and hi <= _MAP_LIMIT:  # false for NaN
        return arr
    clean = np.where(np.isfinite(arr), arr, 0.0).astype(np.float32)
    return np.clip(clean, -_MAP_LIMIT, _MAP_LIMIT)


def parse(
    heatmaps,
    pafs,
    skeleton: Skeleton,
    config: ParserConfig | str | None = None,
    stride: int = 8,
) -> list[Person]:
    """People found in one image's maps (see the module docstring).

    ``heatmaps``: (C >= K, H, W), channel k = part k (a background channel after the parts
    is ignored); ``pafs``: (C >= 2L, H, W) laid out by ``skeleton.paf_channels``;
    ``config``: a :class:`ParserConfig` or a preset name (default: ``"default"``);
    ``stride``: input pixels per map cell. Raises :class:`ParserError` on wrong shapes.
    """
    return parse_with_peaks(heatmaps, pafs, skeleton, config, stride)[0]


def _no_peaks(k: int) -> Peaks:
    return Peaks(np.zeros((0, 2)), np.zeros(0), np.zeros(0, np.intp), np.zeros(k + 1, np.intp))


def parse_with_peaks(
    heatmaps,
    pafs,
    skeleton: Skeleton,
    config: ParserConfig | str | None = None,
    stride: int = 8,
) -> tuple[list[Person], Peaks]:
    """:func:`parse`, and every part candidate it considered (:class:`Peaks`, input pixels).

    A person's keypoint is one of these candidates (same x, y; its score is the
    candidate's clipped to [0, 1]). Costs nothing over :func:`parse`: the peaks are found anyway.
    """
    if config is None:
        config = PRESETS["default"]
    elif isinstance(config, str):
        config = get_preset(config)
    elif not isinstance(config, ParserConfig):
        raise ParserError(f"config must be a ParserConfig or a preset name, got {type(config).__name__}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ParserError(f"stride must be a positive integer, got {stride!r}")
    stride = int(stride)
    k = skeleton.num_parts
    paf_needed = 1 + max((c for pair in skeleton.paf_channels for c in pair), default=-1)
    hm = _as_maps(heatmaps, "heatmaps", k)
    pf = _as_maps(pafs, "pafs", paf_needed)
    if hm.shape[1:] != pf.shape[1:]:
        raise ParserError(f"heatmaps are {hm.shape[1:]} but pafs {pf.shape[1:]} (H, W)")
    h, w = hm.shape[1:]
    if k == 0 or h == 0 or w == 0:
        return [], _no_peaks(k)

    # 1. Part candidates.
    hm_hwc = scratch("heatmaps", (h, w, k), np.float32)
    np.copyto(hm_hwc, _sanitised(hm).transpose(1, 2, 0))
    peaks = find_peaks(hm_hwc, stride, config)
    if peaks.count == 0:
        return [], peaks

    # 2. Limb candidates scored on the raw or upsampled PAFs, then matched per limb.
    limbs = np.asarray(skeleton.limbs, dtype=np.intp).reshape(-1, 2)
    channels = np.asarray(skeleton.paf_channels, dtype=np.intp).reshape(-1, 2)
    pf = _sanitised(pf)
    factor = config.upsample_factor(stride) if config.upsample_pafs else 1
    if factor == 1:
        # (L, H, W) planes of each limb's x and y: plain plane copies, no transposes.
        fx = np.take(pf, channels[:, 0], axis=0, out=scratch("paf_x", (len(channels), h, w), np.float32))
        fy = np.take(pf, channels[:, 1], axis=0, out=scratch("paf_y", (len(channels), h, w), np.float32))
    else:
        up = upsample_hwc(np.ascontiguousarray(pf[channels.reshape(-1)].transpose(1, 2, 0)), factor)
        fx = np.ascontiguousarray(up[:, :, 0::2].transpose(2, 0, 1))
        fy = np.ascontiguousarray(up[:, :, 1::2].transpose(2, 0, 1))
    fields = limb_fields(fx, fy, config.paf_threshold, config.paf_sampling)
    pairs = score_pairs(peaks, fields, limbs, stride, factor, h * stride, config)
    matches = (match_optimal if config.matching == "optimal" else match_greedy)(pairs, peaks)

    # 3. People, strongest first (stable: ties keep assembly order).
    people = assemble(matches, peaks.part, peaks.score, skeleton, config)
    order = np.argsort(-people.score, kind="stable")
    members = people.members[order]
    found = members >= 0
    rows = np.where(found, members, 0)
    xy = np.where(found[:, :, None], peaks.xy[rows], np.nan)
    scores = np.where(found, np.clip(peaks.score, 0.0, 1.0)[rows], 0.0)
    return [
        Person(xy=xy[i], scores=scores[i], score=float(people.score[j]), skeleton=skeleton)
        for i, j in enumerate(order.tolist())
    ], peaks
