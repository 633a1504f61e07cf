"""The network's input tensor: BGR images normalised as the model's metadata says."""

from __future__ import annotations

import numpy as np

from .metadata import ModelInfo


def to_tensor(images: list[np.ndarray] | np.ndarray, info: ModelInfo) -> np.ndarray:
    """BGR uint8 (h, w, 3) image(s) of one size -> normalised (N, 3, h, w) float32."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    images = np.asarray(images)
    if info.color == "rgb":
        images = images[..., ::-1]
    # Planar first, on the uint8 pixels (a quarter of the bytes), then one conversion.
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32)
    mean = np.asarray(info.mean, np.float32).reshape(1, 3, 1, 1)
    scale = np.asarray(info.scale, np.float32).reshape(1, 3, 1, 1)
    if mean.any():
        x -= mean
    if (scale != 1).any():
        x *= scale
    return x


def pad_input_value(info: ModelInfo) -> np.ndarray:
    """(C,) float32: what the letterbox's padding (``pad_value``) becomes in the input tensor."""
    pad = np.full((1, 1, 3), [int(round(v)) for v in info.pad_value], np.uint8)
    return to_tensor(pad, info).reshape(-1)
