"""Pretrained weights for :class:`~posecli.train.network.LightweightOpenPose`.

The weights come from the imported default model (an ONNX file made by ``posecli models
import``), read with ``onnx.numpy_helper``, or from the OpenVINO IR (``.xml``) converted in
memory by the same importer when no ONNX file is at hand. Either way the result is a
:class:`PretrainedWeights`: per convolution name (the IR's layer name, ``/WithoutBiases``
dropped) its (C_out, C_in/groups, k, k) kernel and (C_out,) bias, plus the input
normalisation ``x * scale + offset`` the graph applies before the first convolution
(combined with the metadata's ``(x - mean) * scale``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from .network import ConvBlock

# Suffixes the IR and the importer add to a convolution's name (bias Adds, output ports).
_SUFFIXES = (":0", "/WithoutBiases", "/add_", "/Fused_Add_")


@dataclass
class PretrainedWeights:
    """``convs``: name -> (kernel, bias or None); ``scale``/``offset``: (3,) input affine."""

    convs: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    scale: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    source: str = ""


def _clean(name: str) -> str:
    for s in _SUFFIXES:
        if name.endswith(s):
            name = name[: -len(s)]
    return name


def _conv_name(node, consumers: dict, outputs: set[str]) -> str:
    """A Conv node's layer name; a conv feeding a graph output through Identity takes its name."""
    nxt = consumers.get(node.output[0], [])
    if len(nxt) == 1 and nxt[0].op_type == "Identity" and nxt[0].output[0] in outputs:
        return nxt[0].output[0]
    return _clean(node.name or node.output[0])


def read_onnx_weights(path: str | Path, model=None) -> PretrainedWeights:
    """Convolution kernels, biases and the input affine of an ONNX pose model.

    ``model``: an already loaded ``onnx.ModelProto`` (``path`` then only names it).
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if model is None:
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # onnx raises protobuf's own errors
            raise ModelError(f"cannot read ONNX model ({exc})", path=path) from None
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attr.t)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    outputs = {o.name for o in graph.output}
    out = PretrainedWeights(source=str(path))
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if node.input[1] not in consts:
            raise ModelError(f"convolution '{node.name}' has a computed kernel; import with precision='fp32'", path=path)
        kernel = np.array(consts[node.input[1]], np.float32)
        bias = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if bias is None:
            # Bias as a separate Add of a constant (1, C, 1, 1), as the IR has it.
            nxt = consumers.get(node.output[0], [])
            if len(nxt) == 1 and nxt[0].op_type == "Add":
                other = [i for i in nxt[0].input if i != node.output[0]]
                if other and other[0] in consts and consts[other[0]].size == kernel.shape[0]:
                    bias = consts[other[0]]
        name = _conv_name(node, consumers, outputs)
        out.convs[name] = (kernel, None if bias is None else np.array(bias, np.float32).reshape(-1))

    # Input normalisation: Mul / Add / Sub of constants between the input and the first conv.
    scale, offset = np.ones(3), np.zeros(3)
    current = graph.input[0].name
    while True:
        nxt = consumers.get(current, [])
        if len(nxt) != 1 or nxt[0].op_type not in ("Mul", "Add", "Sub", "Div", "Cast"):
            break
        node = nxt[0]
        if node.op_type != "Cast":
            other = [i for i in node.input if i != current]
            if not other or other[0] not in consts:
                break
            c = np.asarray(consts[other[0]], np.float64).reshape(-1)
            if node.op_type == "Mul":
                scale, offset = scale * c, offset * c
            elif node.op_type == "Div":
                scale, offset = scale / c, offset / c
            elif node.op_type == "Add":
                offset = offset + c
            else:
                offset = offset - c
        current = node.output[0]
    meta_scale, meta_mean = _metadata_affine(model)
    out.scale = (meta_scale * scale).astype(np.float32)
    out.offset = (offset - meta_mean * meta_scale * scale).astype(np.float32)
    return out


def _metadata_affine(model) -> tuple[np.ndarray, np.ndarray]:
    """(scale, mean) from the model's posecli metadata; (1, 0) without metadata."""
    from ..network.metadata import METADATA_KEY, ModelInfo

    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            info = ModelInfo.from_json(prop.value)
            order = [2, 1, 0] if info.color == "rgb" else [0, 1, 2]  # the network is BGR
            return np.asarray(info.scale, np.float64)[order], np.asarray(info.mean, np.float64)[order]
    return np.ones(3), np.zeros(3)


def read_weights(path: str | Path) -> PretrainedWeights:
    """Weights of an ONNX model, or of an OpenVINO IR (``.xml``) converted in memory by
    :func:`posecli.network.importers.openvino.convert_openvino_ir` (float32, as ``models import``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("model file does not exist", path=path)
    if path.suffix.lower() == ".xml":
        from ..network.importers.openvino import convert_openvino_ir

        return read_onnx_weights(path, convert_openvino_ir(path, "fp32"))
    return read_onnx_weights(path)


def load_pretrained(net: torch.nn.Module, weights: PretrainedWeights, strict: bool = True) -> list[str]:
    """Copy ``weights`` into every :class:`ConvBlock` whose ``source`` names a convolution.

    Returns the names of the blocks left as they were (none for the default model with one
    refinement stage). Raises :class:`ModelError` on a shape mismatch, or, when ``strict``,
    on a block without weights. Blocks with batch norm cannot take folded weights.
    """
    missing = []
    for module in net.modules():
        if not isinstance(module, ConvBlock) or not module.source:
            continue
        if module.source not in weights.convs:
            missing.append(module.source)
            continue
        if module.bn is not None:
            raise ModelError("pretrained weights have batch norm folded in; build the network with bn=False")
        kernel, bias = weights.convs[module.source]
        if tuple(module.conv.weight.shape) != kernel.shape:
            raise ModelError(
                f"layer '{module.source}': weights {kernel.shape} do not fit {tuple(module.conv.weight.shape)}",
                path=weights.source or None,
            )
        with torch.no_grad():
            module.conv.weight.copy_(torch.from_numpy(kernel))
            module.conv.bias.copy_(torch.from_numpy(bias) if bias is not None else torch.zeros_like(module.conv.bias))
    if strict and missing:
        raise ModelError(
            f"{len(missing)} layers have no weights in the model (first: {missing[0]})",
            path=weights.source or None,
        )
    normalise = getattr(net, "normalise", None)
    if normalise is not None:
        normalise.set(weights.scale, weights.offset)
    return missing
