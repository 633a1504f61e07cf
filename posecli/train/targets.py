"""Ground-truth maps (heatmaps, PAFs) rendered from keypoints, in NumPy.

Used by the parser tests now and by training later. N people, K parts, L limbs; maps are
(C, H, W) at the network's output stride ``s``.

Pixel-centre convention (shared with the parser): map cell (row i, column j) has its
centre at network-input pixel ``x = j * s + (s - 1) / 2``, ``y = i * s + (s - 1) / 2``, and
input pixel (row y, column x) has its centre at integer ``x, y`` (as in ``posecli.types``).
Upsampling a map by ``s`` with half-pixel alignment (cv2.resize) therefore lands map pixel
``u`` exactly on input pixel ``u``.
"""

from __future__ import annotations

import numpy as np

from ..skeleton import Skeleton


def grid_centres(size: int, stride: int) -> np.ndarray:
    """(size,) input-pixel coordinates of the centres of ``size`` map cells."""
    return np.arange(size, dtype=np.float64) * stride + (stride - 1) / 2.0


def _labelled(keypoints: np.ndarray) -> np.ndarray:
    """(N, K) bool: x, y finite and v > 0."""
    return np.isfinite(keypoints[..., :2]).all(axis=-1) & (np.nan_to_num(keypoints[..., 2]) > 0)


def _as_keypoints(keypoints) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must be (N, K, 3) x, y, v, got {kp.shape}")
    return kp


def render_heatmaps(
    keypoints, size_hw: tuple[int, int], stride: int, sigma: float, background: bool = True
) -> np.ndarray:
    """Confidence maps: (K+1, H, W) float32 with the background channel last, else (K, H, W).

    ``keypoints``: (N, K, 3) x, y, v in input pixels; labelled where v > 0 and x, y finite.
    Each labelled keypoint l gives exp(-||p - l||^2 / sigma^2) (sigma in input pixels) at
    every cell centre p; people combine by the maximum; background = 1 - max over parts.
    """
    kp = _as_keypoints(keypoints)
    h, w = int(size_hw[0]), int(size_hw[1])
    n, k = kp.shape[:2]
    out = np.zeros((k, h, w), dtype=np.float64)
    xs, ys = grid_centres(w, stride), grid_centres(h, stride)
    labelled = _labelled(kp)
    for person in range(n):
        parts = np.flatnonzero(labelled[person])
        if parts.size == 0:
            continue
        # The Gaussian is separable: (K', H) x (K', W) outer products.
        x, y = kp[person, parts, 0], kp[person, parts, 1]
        gx = np.exp(-((xs[None, :] - x[:, None]) ** 2) / sigma**2)
        gy = np.exp(-((ys[None, :] - y[:, None]) ** 2) / sigma**2)
        out[parts] = np.maximum(out[parts], gy[:, :, None] * gx[:, None, :])
    if background:
        bg = np.clip(1.0 - out.max(axis=0, initial=0.0), 0.0, 1.0)
        out = np.concatenate([out, bg[None]], axis=0)
    return out.astype(np.float32)


def render_pafs(
    keypoints,
    skeleton: Skeleton,
    size_hw: tuple[int, int],
    stride: int,
    limb_width: float,
    end_margin: float = 0.0,
) -> np.ndarray:
    """Part affinity fields: (2L, H, W) float32, laid out by ``skeleton.paf_channels``.

    For limb l = (a, b) and each person with both parts labelled, every cell centre p with
    0 <= (p - a) . u <= |b - a| and |(p - a) x u| <= limb_width (input pixels) gets the unit
    vector u = (b - a) / |b - a|; where several people's limbs cover a cell, the average of
    their vectors; zero elsewhere. ``end_margin`` (input pixels) extends the band beyond
    both ends along the limb (OpenPose's training renderer covers about ``limb_width``
    there; a network's fields also spill over the joints).
    """
    kp = _as_keypoints(keypoints)
    h, w = int(size_hw[0]), int(size_hw[1])
    out = np.zeros((2 * skeleton.num_limbs, h, w), dtype=np.float32)
    if kp.shape[0] == 0 or h == 0 or w == 0:
        return out
    if kp.shape[1] != skeleton.num_parts:
        raise ValueError(f"keypoints have {kp.shape[1]} parts, skeleton '{skeleton.name}' {skeleton.num_parts}")
    px = grid_centres(w, stride)[None, :]
    py = grid_centres(h, stride)[:, None]
    labelled = _labelled(kp)
    for limb, (a, b) in enumerate(skeleton.limbs):
        total = np.zeros((2, h, w), dtype=np.float64)
        count = np.zeros((h, w), dtype=np.int32)
        for person in np.flatnonzero(labelled[:, a] & labelled[:, b]):
            pa, pb = kp[person, a, :2], kp[person, b, :2]
            length = float(np.hypot(*(pb - pa)))
            if length <= 0:
                continue
            ux, uy = (pb - pa) / length
            # Along-limb and across-limb coordinates of every cell centre.
            dx, dy = px - pa[0], py - pa[1]
            along = dx * ux + dy * uy
            across = np.abs(dx * uy - dy * ux)
            on = (along >= -end_margin) & (along <= length + end_margin) & (across <= limb_width)
            total[0][on] += ux
            total[1][on] += uy
            count += on
        covered = count > 0
        cx, cy = skeleton.paf_channels[limb]
        out[cx][covered] = total[0][covered] / count[covered]
        out[cy][covered] = total[1][covered] / count[covered]
    return out
