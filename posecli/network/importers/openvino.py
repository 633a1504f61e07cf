"""Import an OpenVINO IR (Intel's human-pose-estimation-0001) as an ONNX model, float32 or int8.

The IR is read with ``openvino.Core().read_model`` and converted by
:class:`~.openvino_graph.Converter` (the walk and the float ops; :mod:`.openvino_qdq` for
FakeQuantize and integer convolutions; :mod:`.openvino_patterns` for the IR's subgraph
conventions). Precisions:

* ``"fp32"``: activation FakeQuantize dropped (``fake_quantize="drop"``, the float model) or
  emulated exactly in float ops (``fake_quantize="emulate"``);
* ``"int8"``: QuantizeLinear/DequantizeLinear pairs with the IR's calibrated ranges and
  integer convolutions (onnxruntime's QLinearConv);
* ``"fp16"`` (import only): the fp32 graph through :mod:`.fp16`.

:func:`import_openvino_ir` then embeds posecli's metadata, read off the graph.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ...errors import MissingExtraError, ModelError, first_line
from ..metadata import (
    DEFAULT_SIZE_HW,
    DEFAULT_STRIDE,
    ModelInfo,
    embed_metadata,
    guess_metadata,
    profile_for_outputs,
)
from .openvino_graph import Converter

PRECISIONS = ("fp32", "int8")  # what the IR converter itself produces
IMPORT_PRECISIONS = ("fp32", "int8", "fp16")  # fp16: the fp32 graph through importers.fp16
FAKE_QUANTIZE_MODES = ("drop", "emulate")
ZOO_SOURCE = "Open Model Zoo {name} ({variant} IR), converted by posecli"
SOURCE = "OpenVINO IR {name} ({variant}), converted by posecli"
OPEN_MODEL_ZOO_LICENSE = "Apache-2.0"  # Intel's Open Model Zoo models
_OPEN_MODEL_ZOO_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*-\d{4}")
#: Models whose training recipe is known to leave their peaks off the labels (metadata
#: ``keypoint_offset``, network-input pixels). human-pose-estimation-0001 is Lightweight
#: OpenPose, trained with its recipe: persons scaled with ``keypoints * scale`` while the
#: image resize maps pixel centres, so each label sits 0.5 (s - 1) px above and left of its
#: pixel for a scale s; COCO's people are mostly enlarged (s = 1.69 on average over the
#: people its label preparation keeps, in train80's 80 COCO train photos), the rotation
#: (up to 40 degrees) keeps 0.92 of the vertical part, and the horizontal flip of half the
#: crops cancels the horizontal part. So the network learned to put parts 0.5 x 0.69 x
#: 0.92 = 0.32 px above where they are; the measured offset at the model's height, for
#: people of the size it was trained on, is 0.34 px (docs/accuracy.md).
KEYPOINT_OFFSETS = {"human-pose-estimation-0001": (0.0, 0.32)}
_PURPOSE = "importing an OpenVINO IR"


# -- public API ---------------------------------------------------------------------------
def convert_openvino_ir(
    xml_path: str | Path,
    precision: str = "fp32",
    *,
    fake_quantize: str = "drop",
) -> onnx.ModelProto:  # noqa: F821 (onnx is imported lazily)
    """Convert the IR at ``xml_path`` (with its ``.bin`` beside it) to an ONNX model.

    ``precision`` is ``"fp32"`` (float32 graph) or ``"int8"`` (QDQ graph keeping the IR's
    calibrated quantization). ``fake_quantize`` only matters for fp32: ``"drop"`` removes
    the activation FakeQuantize nodes, ``"emulate"`` reproduces them in float ops.
    The input's N, H and W are dynamic. No metadata is embedded (see
    :func:`import_openvino_ir`). Raises :class:`ModelError` for bad input.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if fake_quantize not in FAKE_QUANTIZE_MODES:
        raise ModelError(
            f"unknown fake_quantize mode '{fake_quantize}' "
            f"(choose from {', '.join(FAKE_QUANTIZE_MODES)})"
        )
    return _convert(xml_path, precision, fake_quantize)[0]


def import_openvino_ir(
    xml_path: str | Path,
    out_path: str | Path,
    precision: str = "fp32",
) -> ModelInfo:
    """Convert the IR, embed posecli metadata, check the model, write it atomically.

    ``precision``: ``"fp32"``, ``"int8"`` (QDQ) or ``"fp16"`` (the float32 graph with float16
    weights and activations and float32 input/outputs, for GPUs; see
    :mod:`posecli.network.importers.fp16`). Returns the embedded :class:`ModelInfo`. The sha256 of
    the IR's ``.bin`` is kept in ``info.extra["source_sha256"]``.
    """
    onnx = _require("onnx")
    xml_path = Path(xml_path)
    out_path = Path(out_path)
    if precision not in IMPORT_PRECISIONS:
        raise ModelError(
            f"unknown precision '{precision}' (choose from {', '.join(IMPORT_PRECISIONS)})")
    proto, facts = _convert(xml_path, "int8" if precision == "int8" else "fp32", "drop")
    if precision == "fp16":
        from .fp16 import convert_float_to_fp16

        proto = convert_float_to_fp16(proto, source=str(xml_path))
    info = _model_info(proto, facts, xml_path, precision)
    embed_metadata(proto, info)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        first = first_line(exc, limit=None, default="invalid model")
        raise ModelError(f"converted model does not pass onnx.checker: {first}", path=xml_path)
    _write_atomic(proto.SerializeToString(), out_path)
    return info


# -- helpers: dependencies, reading, metadata, writing ------------------------------------
def _convert(xml_path, precision: str, fake_quantize: str):
    """(ONNX model, facts read off the graph: native height/width, pad_value)."""
    ov = _require("openvino")
    onnx = _require("onnx")
    xml_path = Path(xml_path)
    model = _read_ir(ov, xml_path)
    mode = "qdq" if precision == "int8" else fake_quantize
    converter = Converter(onnx, model, mode, xml_path)
    return converter.convert(), converter.facts


def _require(module: str):
    """Import an optional dependency of the ``import`` extra, or say how to install it."""
    try:
        if module == "openvino":
            from ..runtimes import import_openvino

            return import_openvino()  # its telemetry declines: no files in the user's home
        return __import__(module)
    except ImportError:
        raise MissingExtraError(module, "import", _PURPOSE) from None


def _read_ir(ov, xml_path: Path):
    """The IR as an ``openvino.Model``; :class:`ModelError` when it is missing or not an IR."""
    if not xml_path.is_file():
        raise ModelError("file not found", path=xml_path)
    if xml_path.suffix.lower() != ".xml":
        raise ModelError("not an OpenVINO IR (expected the graph's .xml file)", path=xml_path)
    bin_path = xml_path.with_suffix(".bin")
    if not bin_path.is_file():
        raise ModelError(f"the IR's weights file {bin_path.name} is missing", path=xml_path)
    try:
        model = ov.Core().read_model(str(xml_path), str(bin_path))
    except Exception as exc:  # noqa: BLE001 (openvino raises RuntimeError and others, multi-line)
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[-1] if lines else type(exc).__name__
        raise ModelError(f"not a readable OpenVINO IR ({detail})", path=xml_path) from None
    return model


def _check_io(graph, xml_path: Path) -> None:
    """One image input and at least the heatmap and PAF outputs (an empty or cut-down net
    is refused here, not with an IndexError when its metadata is made)."""
    n_in, n_out = len(graph.input), len(graph.output)
    if n_in != 1 or n_out < 2:
        raise ModelError(f"the IR has {n_in} inputs and {n_out} outputs; a pose network has one image input "
                         "and heatmap and PAF outputs", path=xml_path)


def _model_info(proto, facts: dict, xml_path: Path, precision: str) -> ModelInfo:
    """Metadata for the converted model, read off the graph where the IR says it.

    The skeleton comes from the outputs' channel counts, the native input size from the
    IR's input shape, the stride from the input and heatmap sizes, the pad value from the
    folded normalisation. The rest is Open Model Zoo's convention (BGR pixels, 0-255,
    normalised inside the graph); an Open Model Zoo name (``<task>-<4 digits>``) means
    Intel's Apache-2.0 models, any other IR gets no license.
    """
    graph = proto.graph
    _check_io(graph, xml_path)
    inp = graph.input[0]
    in_shape = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    outputs = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]
               for o in graph.output}
    profile = profile_for_outputs(outputs)
    if profile is None:
        shown = ", ".join(f"{k} {v}" for k, v in outputs.items())
        raise ModelError(f"the outputs ({shown}) match no known skeleton's heatmap and PAF channels",
                         path=xml_path)
    name = xml_path.stem
    info = guess_metadata(profile, inp.name, in_shape, outputs, name=name)
    size_hw = facts.get("size_hw")
    stride = _stride(size_hw, facts.get("outputs_hw", {}).get(info.heatmaps.name))
    variant = xml_path.parent.name or "OpenVINO"
    zoo = _OPEN_MODEL_ZOO_NAME.fullmatch(name) is not None
    return info.with_changes(
        size_hw=size_hw or DEFAULT_SIZE_HW,
        stride=stride or DEFAULT_STRIDE,
        color="bgr",
        mean=(0.0, 0.0, 0.0),
        scale=(1.0, 1.0, 1.0),
        pad_value=facts.get("pad_value", (0.0, 0.0, 0.0)),
        precision=precision,
        source=(ZOO_SOURCE if zoo else SOURCE).format(name=name, variant=variant),
        license=OPEN_MODEL_ZOO_LICENSE if zoo else "",
        keypoint_offset=KEYPOINT_OFFSETS.get(name, (0.0, 0.0)),
        extra={"source_sha256": _sha256(xml_path.with_suffix(".bin"))},
    )


def _stride(size_hw: tuple[int, int] | None, maps_hw: tuple[int, int] | None) -> int | None:
    """Input pixels per map cell when both sizes are known and divide evenly, else None."""
    if not size_hw or not maps_hw or min(maps_hw) < 1:
        return None
    (h, w), (mh, mw) = size_hw, maps_hw
    if h % mh or w % mw or h // mh != w // mw:
        return None
    return h // mh


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(data: bytes, out_path: Path) -> None:
    """Write to a temporary file in the target directory, then rename it into place."""
    from ...io.atomic import atomic_path

    with atomic_path(out_path) as tmp:
        tmp.write_bytes(data)

