"""Ground truth of one training sample: keypoints in the skeleton's order, the loss mask.

N people, K parts of the skeleton, L limbs. Heatmaps and PAFs are rendered by
:mod:`posecli.train.targets` (the single copy); this module adds what is specific to COCO-format
annotations:

* :func:`coco17_to_skeleton`: COCO-17 keypoints -> the skeleton's parts (for COCO-18 the
  neck is the midpoint of the shoulders when both are labelled);
* :func:`ignore_mask`: 1 where the loss counts, 0 on crowd regions and on people
  without keypoints (the network must not be punished for finding them);
* :func:`render_sample`: heatmaps, PAFs and mask at the output stride.

Keypoint coordinates are used as COCO stores them, in image pixels; a missing keypoint
is ``x = y = NaN, v = 0``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..skeleton import COCO17_NAMES, COCO18, Skeleton
from ..maps import render_heatmaps, render_pafs

# Parts not in COCO-17, made as midpoints of two COCO-17 parts (both must be labelled).
_MIDPOINTS = {
    "neck": ("left_shoulder", "right_shoulder"),
    "mid_hip": ("left_hip", "right_hip"),
}


def coco17_to_skeleton(keypoints17, skeleton: Skeleton = COCO18) -> np.ndarray:
    """(N, 17, 3) COCO x, y, v -> (N, K, 3) x, y, v in ``skeleton``'s part order.

    COCO's v = 0 (not labelled) becomes x = y = NaN, v = 0. Parts the skeleton has but
    COCO-17 lacks are midpoints (neck, mid_hip) with v = min of the two, or missing.
    """
    kp = np.asarray(keypoints17, dtype=np.float64).reshape(-1, 17, 3)
    if skeleton.coco17 is None:
        raise ValueError(f"skeleton '{skeleton.name}' has no COCO-17 mapping")
    n = kp.shape[0]
    out = np.full((n, skeleton.num_parts, 3), np.nan)
    out[..., 2] = 0.0
    labelled = kp[..., 2] > 0
    src = np.where(labelled[..., None], kp, np.array([np.nan, np.nan, 0.0]))
    out[:, list(skeleton.coco17)] = src
    for part, (left, right) in _MIDPOINTS.items():
        if part not in skeleton.parts:
            continue
        a, b = COCO17_NAMES.index(left), COCO17_NAMES.index(right)
        both = labelled[:, a] & labelled[:, b]
        k = skeleton.index(part)
        out[both, k, :2] = (kp[both, a, :2] + kp[both, b, :2]) / 2
        out[both, k, 2] = np.minimum(kp[both, a, 2], kp[both, b, 2])
    return out


def _segmentation_mask(segmentation, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 0/1 of a COCO segmentation (polygons, RLE or compressed RLE)."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), np.uint8)
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.uint8)


def ignore_mask(annotations: list[dict], height: int, width: int) -> np.ndarray:
    """(H, W) float32 in image pixels: 0 on crowd regions and people without keypoints, else 1.

    ``annotations``: the COCO annotation records of one image (person category).
    """
    mask = np.ones((height, width), np.float32)
    for ann in annotations:
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) == 0:
            seg = ann.get("segmentation")
            if seg:
                mask[_segmentation_mask(seg, height, width) > 0] = 0.0
            elif ann.get("bbox"):
                # No outline: fall back to the box.
                x, y, w, h = (float(v) for v in ann["bbox"])
                x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
                mask[y0:int(np.ceil(y + h)), x0:int(np.ceil(x + w))] = 0.0
    return mask


def mask_to_grid(mask: np.ndarray, stride: int) -> np.ndarray:
    """(H, W) mask in input pixels (H, W multiples of ``stride``) -> (H/s, W/s) cell averages."""
    h, w = mask.shape
    if h % stride or w % stride:
        raise ValueError(f"mask size {w}x{h} is not a multiple of the stride {stride}")
    return cv2.resize(mask.astype(np.float32), (w // stride, h // stride), interpolation=cv2.INTER_AREA)


def render_sample(
    keypoints: np.ndarray,
    mask: np.ndarray,
    skeleton: Skeleton,
    stride: int,
    sigma: float,
    limb_width: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets of one network input of (H, W) pixels.

    ``keypoints``: (N, K, 3) x, y, v in input pixels; ``mask``: (H, W) in input pixels.
    Returns heatmaps (K+1, h, w), PAFs (2L, h, w) and mask (1, h, w), float32, h = H / s.
    """
    grid = mask_to_grid(mask, stride)
    size_hw = grid.shape
    heatmaps = render_heatmaps(keypoints, size_hw, stride, sigma, background=skeleton.background)
    pafs = render_pafs(keypoints, skeleton, size_hw, stride, limb_width)
    return heatmaps, pafs, grid[None].astype(np.float32)
