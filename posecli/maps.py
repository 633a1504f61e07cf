"""The maps: the stage between the network and the parser, in one home.

A network of output stride ``s`` turns an (h, w) input into heatmaps (C_h, h/s, w/s) and PAFs
(C_p, h/s, w/s). This module holds what every stage needs to agree on about them:

* :class:`Maps`, the record passed from the estimator to the parser and the maps writer;
* the letterbox (:class:`Letterbox`, :func:`fit_size`, :func:`letterbox`): an image resized
  keeping its aspect and padded right/bottom to a multiple of the stride, and the way back;
* the ONE pixel-centre convention (:func:`rescale`), used for every change of grid;
* maps rendered from known skeletons (:func:`render_heatmaps`, :func:`render_pafs`), for
  the parser's tests and for training targets;
* flip un-mirroring (:func:`unflip_maps`).

Pixel-centre convention: pixel (row i, column j) of any grid has its centre at x = j, y = i.
A grid ``f`` times finer than another (an image resized by ``f``, an input ``s`` times finer
than its map, a map upsampled ``f`` times) puts coarse x at fine ``(x + 0.5) * f - 0.5``.
So map cell ``u`` is centred on input pixel ``u * s + (s - 1) / 2``, and upsampling a map by
``s`` with half-pixel alignment (``cv2.resize``) lands map pixel ``u`` on input pixel ``u``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InputError
from .skeleton import Skeleton

# The widest network input, in multiples of its height: a panorama or a strip a few pixels
# tall (3000x1) is scaled to fit this width instead, not blown up to gigabytes.
MAX_ASPECT = 16


# -- the pixel-centre convention -----------------------------------------------------------------
def rescale(xy, factor) -> np.ndarray:
    """(..., D) coordinates on a grid -> on a grid ``factor`` times finer (per axis when
    ``factor`` is a sequence); pixel centres map to pixel centres. NaN stays NaN."""
    return (np.asarray(xy, dtype=np.float64) + 0.5) * factor - 0.5


def cell_centres(size: int, stride: int) -> np.ndarray:
    """(size,) input-pixel coordinates of the centres of ``size`` map cells."""
    return rescale(np.arange(size), stride)


def affine_of(transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(2, 3) affine ``[x', y'] = A @ [x, y, 1]`` of a per-axis linear map of (..., 2) points."""
    ends = transform(np.array([[0.0, 0.0], [1.0, 1.0]]))
    a, b = ends[1] - ends[0], ends[0]
    return np.array([[a[0], 0.0, b[0]], [0.0, a[1], b[1]]])


# -- the letterbox ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Letterbox:
    """How an image of ``image_wh`` became a network input of ``input_wh``.

    ``resized_wh`` is the size of the resized image before padding; ``scale_xy`` the
    per-axis ratios ``resized / image`` (equal up to rounding). Padding goes to the right and
    bottom, so it never shifts coordinates.
    """

    image_wh: tuple[int, int]
    resized_wh: tuple[int, int]
    input_wh: tuple[int, int]

    @property
    def scale_xy(self) -> tuple[float, float]:
        return (self.resized_wh[0] / self.image_wh[0], self.resized_wh[1] / self.image_wh[1])

    def to_image(self, xy) -> np.ndarray:
        """(..., 2) network-input x, y -> original image x, y (NaN stays NaN)."""
        return rescale(xy, 1.0 / np.array(self.scale_xy))

    def to_input(self, xy) -> np.ndarray:
        """(..., 2) original image x, y -> network-input x, y."""
        return rescale(xy, np.array(self.scale_xy))


def fit_size(image_wh: tuple[int, int], height: int, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(resized_wh, input_wh)`` for an image scaled to ``height``, padded to ``stride``.

    Images wider than :data:`MAX_ASPECT` times their height are scaled to that width
    instead (less tall than ``height``; the padding fills the rest).
    """
    w, h = image_wh
    if w < 1 or h < 1:
        raise InputError(f"image has no pixels ({w}x{h})")
    scale = min(height / h, MAX_ASPECT * height / w)
    rw = max(1, int(round(w * scale)))
    rh = max(1, min(int(height), int(round(h * scale))))
    pw = -(-rw // stride) * stride
    ph = -(-rh // stride) * stride
    return (rw, rh), (pw, ph)


def base_letterbox(shape, height: int, stride: int) -> Letterbox:
    """The :class:`Letterbox` an image of ``shape`` (H, W, ...) gets at ``height``, without resizing it."""
    ih, iw = shape[:2]
    resized, padded = fit_size((iw, ih), height, stride)
    return Letterbox((iw, ih), resized, padded)


def letterbox(image: np.ndarray, height: int, stride: int, pad_value=(0, 0, 0)) -> tuple[np.ndarray, Letterbox]:
    """Resize an (H, W, 3) uint8 image to ``height`` keeping aspect, pad right/bottom.

    Returns the padded (h, w, 3) uint8 image (h, w multiples of ``stride``) and the
    :class:`Letterbox` that maps points back.
    """
    box = base_letterbox(image.shape, height, stride)
    (rw, rh), (pw, ph) = box.resized_wh, box.input_wh
    # Cubic both ways, as OpenPose does: INTER_AREA's box filter blurs the limbs the network
    # was trained to see sharp (AP 0.596 -> 0.652 on the mini set, default parser).
    resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_CUBIC)
    if (pw, ph) != (rw, rh):
        pad = [int(round(v)) for v in pad_value]
        resized = cv2.copyMakeBorder(resized, 0, ph - rh, 0, pw - rw, cv2.BORDER_CONSTANT, value=pad)
    return resized, box


# -- the record ---------------------------------------------------------------------------------
@dataclass
class Maps:
    """Heatmaps (C_h, h, w) and PAFs (C_p, h, w) on the map grid of the input ``box.input_wh``;
    a map cell is ``stride`` input pixels."""

    heatmaps: np.ndarray
    pafs: np.ndarray
    box: Letterbox
    stride: int

    def cells_to_image(self, uv) -> np.ndarray:
        """(..., 2) map cell coordinates (column u, row v) -> image pixels (x, y)."""
        return self.box.to_image(rescale(uv, self.stride))

    def cell_to_image_affine(self) -> np.ndarray:
        """(2, 3) affine: map cell (u, v) -> image pixel (x, y), ``[x, y] = A @ [u, v, 1]``."""
        return affine_of(self.cells_to_image)


# -- flip -------------------------------------------------------------------------------------------
def unflip_maps(hm: np.ndarray, paf: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Maps of mirrored inputs (N, C, h, w) -> maps aligned with the unmirrored inputs.

    Mirror back along x, swap left/right part channels, move each limb's PAF to its
    mirror limb (reversing its direction where the skeleton stores it reversed) and negate
    the x component.
    """
    hm = hm[..., ::-1]
    paf = paf[..., ::-1]
    k = skeleton.num_parts
    order = list(skeleton.flip_parts) + list(range(k, hm.shape[1]))
    out_hm = hm[:, order]
    out_paf = np.empty_like(paf)
    for limb, (cx, cy) in enumerate(skeleton.paf_channels):
        twin, sign = skeleton.flip_limbs[limb]
        tx, ty = skeleton.paf_channels[twin]
        out_paf[:, cx] = -sign * paf[:, tx]
        out_paf[:, cy] = sign * paf[:, ty]
    return out_hm, out_paf


# -- maps rendered from skeletons (parser tests, training targets) ------------------------------------
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
    xs, ys = cell_centres(w, stride), cell_centres(h, stride)
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
    px = cell_centres(w, stride)[None, :]
    py = cell_centres(h, stride)[:, None]
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
