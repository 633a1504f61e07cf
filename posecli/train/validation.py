"""Validation AP of a network in training, through the same code as ``posecli eval``.

The network is exported to a temporary ONNX model (with posecli metadata) and handed to
:mod:`posecli.evaluate`, so a validation figure is exactly what a user would measure on the
exported model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .export import export_network, model_info


def evaluate_network(net: torch.nn.Module, meta: dict, annotations: str | Path,
                     images: str | Path, height: int | None = None) -> float:
    """COCO keypoint AP (0-1) of ``net``."""
    with tempfile.TemporaryDirectory(prefix="posecli-val-") as tmp:
        path = Path(tmp) / "model.onnx"
        was_training = net.training
        net.eval()
        try:
            export_network(net, path, model_info(meta, "validation"))
        finally:
            net.train(was_training)
        return evaluate_onnx(path, annotations, images, height)


def evaluate_onnx(model: str | Path, annotations: str | Path, images: str | Path,
                  height: int | None = None) -> float:
    """COCO keypoint AP of an ONNX model file (needs pycocotools: the ``eval`` extra)."""
    from ..evaluate import coco_ap

    return coco_ap(model, annotations, images, height=height)
