"""Checkpoint -> ONNX model with posecli metadata, runnable by ``posecli image --model``.

The exported graph takes ``data``: (N, 3, H, W) float32 BGR pixels 0-255 (normalisation is
inside the network, so the metadata's mean is 0 and scale 1, like the imported default
model) and returns ``heatmaps`` (N, K+1, H/8, W/8) and ``pafs`` (N, 2L, H/8, W/8) of the
last stages. Batch, height and width are dynamic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..io.atomic import atomic_path
from ..network.metadata import DEFAULT_SIZE_HW, ModelInfo, OutputSpec, embed_metadata
from ..skeleton import COCO18, Skeleton
from .checkpoint import load_checkpoint, network_from_checkpoint
from .network import InferenceWrapper

INPUT_NAME = "data"
OUTPUTS = ("heatmaps", "pafs")
OPSET = 17


def model_info(meta: dict, name: str, size_hw: tuple[int, int] | None = None) -> ModelInfo:
    """The metadata record of a network trained with checkpoint ``meta``."""
    skeleton = Skeleton.from_dict(meta["skeleton"]) if "skeleton" in meta else COCO18
    size = size_hw or tuple(meta.get("export_size_hw") or meta.get("input_hw") or DEFAULT_SIZE_HW)
    base = meta.get("base_model", "")
    return ModelInfo(
        name=name,
        skeleton=skeleton,
        input_name=INPUT_NAME,
        size_hw=(int(size[0]), int(size[1])),
        heatmaps=OutputSpec(OUTPUTS[0]),
        pafs=OutputSpec(OUTPUTS[1]),
        stride=int(meta.get("stride", 8)),
        color="bgr",
        mean=(0.0, 0.0, 0.0),
        scale=(1.0, 1.0, 1.0),
        pad_value=tuple(float(v) for v in meta.get("pad_value", (0.0, 0.0, 0.0))),
        precision="fp32",
        source=f"posecli train ({meta.get('arch', 'network')}" + (f", from {base})" if base else ")"),
        license=str(meta.get("license", "")),
        keypoint_offset=tuple(float(v) for v in meta.get("keypoint_offset", (0.0, 0.0))),
    )


def export_network(net: torch.nn.Module, out: str | Path, info: ModelInfo) -> Path:
    """Write ``net`` as ONNX with ``info`` embedded, atomically; returns the path."""
    import onnx

    out = Path(out)
    net = InferenceWrapper(net).eval()
    h, w = info.size_hw
    dummy = torch.zeros(1, 3, h, w)
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=list(OUTPUTS),
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                              OUTPUTS[0]: {0: "batch", 2: "map_height", 3: "map_width"},
                              OUTPUTS[1]: {0: "batch", 2: "map_height", 3: "map_width"}},
            )
        proto = onnx.load(str(tmp))
        embed_metadata(proto, info)
        onnx.save(proto, str(tmp))
    return out


def export_checkpoint(checkpoint: str | Path, out: str | Path, name: str | None = None,
                      size_hw: tuple[int, int] | None = None) -> ModelInfo:
    """Export a training checkpoint to ONNX; returns the embedded metadata."""
    state = load_checkpoint(checkpoint)
    net = network_from_checkpoint(state)
    meta = dict(state.get("meta", {}), arch=state["arch"])
    info = model_info(meta, name or Path(out).stem, size_hw)
    export_network(net, out, info)
    return info
