"""Convert an OpenVINO IR (Intel's human-pose-estimation-0001) to ONNX, as float32 or int8.

The IR is read with ``openvino.Core().read_model`` and its ops are walked in topological
order. Every subgraph that depends only on constants (the weights: int8 constant ->
Convert -> Subtract(zero point) -> Multiply(scale) [-> Reshape]) is folded in NumPy.
The rest maps onto a handful of ONNX ops:

    Parameter -> graph input (N, C, H, W all dynamic but C), Convolution / GroupConvolution
    (+ the bias Add that follows) -> Conv, Add / Multiply / Subtract, Relu, Elu, Concat,
    Reshape, Result -> graph output (an Identity when the names differ).

FakeQuantize on activations (Intel's calibrated INT8 ranges) is handled per precision:

* ``"fp32"``: dropped (``fake_quantize="drop"``, the float model) or emulated exactly in
  float ops (``fake_quantize="emulate"``: Sub, Mul, Round, Max, Min, Mul, Add).
* ``"int8"``: QuantizeLinear/DequantizeLinear pairs with the IR's own ranges
  (``scale = (high - low) / (levels - 1)``, zero point ``-low / scale``; uint8). A Conv whose
  input is quantized and whose output (after its bias and an optional Relu) is quantized
  gets int8 weights with per-output-channel DequantizeLinear (axis 0) and an int32 bias,
  the QDQ pattern that onnxruntime fuses into QLinearConv. Per-channel activation ranges
  (the IR quantizes depthwise-conv inputs per channel) cannot be a QLinearConv input or
  output scale, so they are folded exactly into weights: the producing conv's rows are
  divided by the channel scales (Relu commutes with positive scales) and the depthwise
  conv's per-channel weight scales are multiplied by them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import MissingExtraError, ModelError
from ...skeleton import get_profile
from ..metadata import ModelInfo, embed_metadata, guess_metadata

PRECISIONS = ("fp32", "int8")  # what the IR converter itself produces
IMPORT_PRECISIONS = ("fp32", "int8", "fp16")  # fp16: the fp32 graph through importers.fp16
FAKE_QUANTIZE_MODES = ("drop", "emulate")
OPSET = 17
IR_VERSION = 8  # onnxruntime >= 1.10 loads it
SOURCE = "Open Model Zoo {name} ({variant} IR), converted by posecli"
_PURPOSE = "importing an OpenVINO IR"


# -- public API ---------------------------------------------------------------------------
def convert_openvino_ir(
    xml_path: str | Path,
    precision: str = "fp32",
    *,
    fake_quantize: str = "drop",
) -> "onnx.ModelProto":  # noqa: F821 (onnx is imported lazily)
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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid model"
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
    converter = _Converter(onnx, model, mode, xml_path)
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
        return ov.Core().read_model(str(xml_path), str(bin_path))
    except Exception as exc:  # openvino raises RuntimeError with a long multi-line text
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[-1] if lines else type(exc).__name__
        raise ModelError(f"not a readable OpenVINO IR ({detail})", path=xml_path) from None


def _model_info(proto, facts: dict, xml_path: Path, precision: str) -> ModelInfo:
    """Metadata for the converted model, read off the graph (sizes, outputs, normalisation)."""
    graph = proto.graph
    inp = graph.input[0]
    in_shape = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    outputs = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]
               for o in graph.output}
    name = xml_path.stem
    info = guess_metadata(get_profile("coco18"), inp.name, in_shape, outputs, name=name)
    size_hw = facts.get("size_hw", (256, 456))
    pad = facts.get("pad_value", (0.0, 0.0, 0.0))
    return info.with_changes(
        size_hw=size_hw,
        stride=8,
        color="bgr",
        mean=(0.0, 0.0, 0.0),
        scale=(1.0, 1.0, 1.0),
        pad_value=pad,
        precision=precision,
        source=SOURCE.format(name=name, variant=xml_path.parent.name or "OpenVINO"),
        license="Apache-2.0",
        extra={"source_sha256": _sha256(xml_path.with_suffix(".bin"))},
    )


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


# -- the converter ------------------------------------------------------------------------
@dataclass
class _QTensor:
    """A quantized activation: ``value = (q - zp) * scale``; scale/zp scalar or per channel."""

    q_name: str
    scale: np.ndarray  # () or (C,), float32
    zp: np.ndarray  # same shape, uint8

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim == 1


@dataclass
class _ConvRecord:
    """A Conv whose weight/bias initializers are written at the end (scales may change)."""

    weight_name: str
    bias_name: str
    weights: np.ndarray  # float32 (O, I/g, kh, kw), or int8 when ``w_scale`` is set
    bias: np.ndarray  # float32 (O,)
    w_scale: np.ndarray | None = None  # (O,) per-channel scale of int8 weights
    x_scale: float = 1.0  # input scale (int8 convs)
    out_mult: np.ndarray | None = None  # (O,) multiplies every output channel
    dq_names: dict = field(default_factory=dict)  # int8 convs: initializer names


class _Converter:
    """One conversion: walks the OpenVINO graph, emits ONNX nodes and initializers."""

    def __init__(self, onnx, model, mode: str, path: Path):
        self.onnx = onnx
        self.model = model
        self.mode = mode  # "drop" | "emulate" | "qdq"
        self.path = path
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.values: dict[tuple[str, int], object] = {}  # (node name, port) -> value
        self.used_names: set[str] = set()
        self.convs: dict[str, _ConvRecord] = {}  # conv output tensor -> record
        self.producer: dict[str, str] = {}  # tensor -> op type that made it
        self.skip: set[str] = set()  # OV nodes already consumed (fused bias adds)
        self.facts: dict = {}  # size_hw, pad_value: read off the graph for the metadata

    # -- driver ---------------------------------------------------------------------------
    def convert(self):
        helper = self.onnx.helper
        inputs, outputs = [], []
        for op in self.model.get_ordered_ops():
            kind = op.get_type_name()
            if op.get_name() in self.skip:
                continue
            if kind == "Parameter":
                inputs.append(self._parameter(op))
            elif kind == "Result":
                outputs.append(self._result(op))
            elif kind == "Constant":
                self._set(op, 0, _constant(op))
            elif all(isinstance(self._get(op, i), np.ndarray) for i in range(op.get_input_size())):
                self._set(op, 0, self._fold(op))
            else:
                handler = getattr(self, f"_op_{kind}", None)
                if handler is None:
                    self._unsupported(op)
                handler(op)
        self._finalize_convs()
        self._prune([o.name for o in outputs])
        graph = helper.make_graph(
            self.nodes,
            self.model.get_friendly_name() or "model",
            inputs,
            outputs,
            initializer=[self.onnx.numpy_helper.from_array(v, k) for k, v in self.inits.items()],
            doc_string=f"converted by posecli from OpenVINO IR {self.path.name} ({self.mode})",
        )
        proto = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="posecli",
            ir_version=IR_VERSION,
        )
        return proto

    def _prune(self, outputs: list[str]) -> None:
        """Drop nodes and initializers no output depends on (left by folded ops)."""
        needed = set(outputs)
        kept = []
        for node in reversed(self.nodes):
            if any(o in needed for o in node.output):
                kept.append(node)
                needed.update(node.input)
        self.nodes = kept[::-1]
        self.inits = {k: v for k, v in self.inits.items() if k in needed}

    # -- bookkeeping ----------------------------------------------------------------------
    def _get(self, op, port: int):
        src = op.input_value(port)
        return self.values[(src.get_node().get_name(), src.get_index())]

    def _set(self, op, port: int, value) -> None:
        self.values[(op.get_name(), port)] = value

    def _name(self, base: str) -> str:
        """A tensor/node name not used yet, derived from ``base``."""
        name, i = base, 1
        while name in self.used_names:
            i += 1
            name = f"{base}_{i}"
        self.used_names.add(name)
        return name

    def _out_name(self, op, port: int = 0) -> str:
        names = op.output(port).get_names()
        base = sorted(names)[0] if names else f"{op.get_friendly_name()}:{port}"
        return self._name(base)

    def _init(self, base: str, array: np.ndarray) -> str:
        name = self._name(base)
        self.inits[name] = array
        return name

    def _node(self, op_type: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(
            self.onnx.helper.make_node(op_type, inputs, [output], name=output, **attrs)
        )
        self.producer[output] = op_type
        return output

    def _unsupported(self, op, why: str = ""):
        extra = f": {why}" if why else ""
        raise ModelError(
            f"unsupported OpenVINO operation '{op.get_type_name()}' "
            f"(node {op.get_friendly_name()}){extra}",
            path=self.path,
        )

    def _float(self, op, port: int) -> str:
        """The name of a float tensor holding input ``port`` (dequantizing when needed)."""
        value = self._get(op, port)
        if isinstance(value, np.ndarray):
            return self._init(f"{op.get_friendly_name()}/const{port}", value.astype(np.float32))
        if isinstance(value, _QTensor):
            return self._dequantize(value, f"{op.get_friendly_name()}/in{port}")
        return value

    def _dequantize(self, q: _QTensor, base: str, scale_one: bool = False) -> str:
        """DequantizeLinear of ``q``; ``scale_one``: scale 1 (per-channel scale folded later)."""
        if scale_one:
            scale = np.array(1.0, np.float32)
            zp = np.array(q.zp.flat[0], np.uint8)
            attrs = {}
        else:
            scale, zp = q.scale, q.zp
            attrs = {"axis": 1} if q.per_channel else {}
        s = self._init(f"{base}/dq_scale", scale)
        z = self._init(f"{base}/dq_zp", zp)
        return self._node("DequantizeLinear", [q.q_name, s, z], self._name(f"{base}/dq"), **attrs)

    def _consumers(self, op, port: int = 0) -> list:
        return [t.get_node() for t in op.output(port).get_target_inputs()]

    # -- ops ------------------------------------------------------------------------------
    def _parameter(self, op):
        helper, TP = self.onnx.helper, self.onnx.TensorProto
        if op.get_element_type().to_string() not in ("f32", "f16"):
            self._unsupported(op, f"input type {op.get_element_type().to_string()}")
        shape = op.get_partial_shape()
        name = self._out_name(op)
        self._set(op, 0, name)
        if shape.rank.is_static and shape.rank.get_length() == 4:
            dims = list(shape)
            c = dims[1].get_length() if dims[1].is_static else "C"
            if dims[2].is_static and dims[3].is_static:
                self.facts["size_hw"] = (dims[2].get_length(), dims[3].get_length())
            self._find_normalisation(op)
            return helper.make_tensor_value_info(name, TP.FLOAT, ["N", c, "H", "W"])
        return helper.make_tensor_value_info(name, TP.FLOAT, None)

    def _find_normalisation(self, param) -> None:
        """Record the pixel value the folded normalisation (x * scale + add) maps to 0."""
        node = param
        mul = add = None
        for _ in range(4):
            cons = self._consumers(node)
            if len(cons) != 1:
                break
            node = cons[0]
            kind = node.get_type_name()
            const = _const_input(node)
            if kind == "Convert":
                continue
            if kind == "Multiply" and mul is None and add is None and const is not None:
                mul = const
            elif kind == "Add" and add is None and const is not None:
                add = const
            else:
                break
        if mul is None or add is None:
            return
        pad = np.broadcast_to(-add.reshape(-1) / mul.reshape(-1), (3,)).astype(np.float64)
        # Pixels are integers: the nearest one is what "maps to 0" means in practice.
        pad = np.where(np.abs(pad - np.round(pad)) < 0.5, np.round(pad), pad)
        self.facts["pad_value"] = tuple(float(v) for v in pad)

    def _result(self, op):
        helper, TP = self.onnx.helper, self.onnx.TensorProto
        src = op.input_value(0)
        names = src.get_names()
        want = sorted(names)[0] if names else op.get_friendly_name()
        tensor = self._float(op, 0)
        if tensor != want:
            if want in self.used_names:
                # Rename: the producing tensor took the output's name; not expected here.
                want = self._name(want)
            else:
                self.used_names.add(want)
            self._node("Identity", [tensor], want)
        shape = src.get_partial_shape()
        dims = None
        if shape.rank.is_static:
            dims = [f"d{i}" for i in range(shape.rank.get_length())]
            if len(dims) == 4:
                ch = list(shape)[1]
                dims = ["N", ch.get_length() if ch.is_static else "C", "h", "w"]
        return helper.make_tensor_value_info(want, TP.FLOAT, dims)

    def _fold(self, op) -> np.ndarray:
        """Evaluate an op whose inputs are all constants, in NumPy (float32 for floats)."""
        kind = op.get_type_name()
        args = [self._get(op, i) for i in range(op.get_input_size())]
        attrs = op.get_attributes()
        if kind == "Convert":
            return args[0].astype(_np_type(attrs["destination_type"]))
        if kind in ("Add", "Subtract", "Multiply"):
            a, b = (x.astype(np.float32) if x.dtype.kind == "f" else x for x in args)
            return {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply}[kind](a, b)
        if kind == "Reshape":
            return args[0].reshape(_reshape_target(args[0].shape, args[1], attrs))
        if kind == "Concat":
            return np.concatenate(args, axis=attrs["axis"])
        if kind == "FakeQuantize":
            x, il, ih, ol, oh = (a.astype(np.float64) for a in args)
            levels = attrs["levels"]
            q = np.round((np.clip(x, il, ih) - il) / (ih - il) * (levels - 1))
            return (q / (levels - 1) * (oh - ol) + ol).astype(np.float32)
        self._unsupported(op, "on constants")

    def _op_Convert(self, op):
        # data -> f16: the converted graph computes in float32 throughout.
        if _np_type(op.get_attributes()["destination_type"]) is not np.float32:
            self._unsupported(op, "conversion of activations to an integer type")
        self._set(op, 0, self._get(op, 0))

    def _op_Relu(self, op):
        self._set(op, 0, self._node("Relu", [self._float(op, 0)], self._out_name(op)))

    def _op_Elu(self, op):
        alpha = float(op.get_attributes().get("alpha", 1.0))
        self._set(op, 0, self._node("Elu", [self._float(op, 0)], self._out_name(op), alpha=alpha))

    def _op_Concat(self, op):
        values = [self._get(op, i) for i in range(op.get_input_size())]
        axis = int(op.get_attributes()["axis"])
        if (self.mode == "qdq" and axis == 1
                and all(isinstance(v, _QTensor) and not v.per_channel for v in values)):
            # Concatenate the uint8 codes; each channel keeps its input's scale and zero
            # point (a consuming conv folds them into its weights and bias).
            shapes = [op.input_value(i).get_partial_shape() for i in range(len(values))]
            if all(sh.rank.is_static and sh[1].is_static for sh in shapes):
                counts = [sh[1].get_length() for sh in shapes]
                q = self._node("Concat", [v.q_name for v in values],
                               self._name(f"{op.get_friendly_name()}/q"), axis=1)
                scale = np.concatenate([np.full(n, v.scale, np.float32)
                                        for n, v in zip(counts, values)])
                zp = np.concatenate([np.full(n, v.zp, np.uint8) for n, v in zip(counts, values)])
                self._set(op, 0, _QTensor(q, scale, zp))
                return
        ins = [self._float(op, i) for i in range(op.get_input_size())]
        self._set(op, 0, self._node("Concat", ins, self._out_name(op), axis=axis))

    def _op_Reshape(self, op):
        shape = self._get(op, 1)
        if not isinstance(shape, np.ndarray):
            self._unsupported(op, "shape must be a constant")
        special_zero = bool(op.get_attributes().get("special_zero", False))
        s = self._init(f"{op.get_friendly_name()}/shape", shape.astype(np.int64).reshape(-1))
        out = self._node("Reshape", [self._float(op, 0), s], self._out_name(op),
                         allowzero=0 if special_zero else 1)
        self._set(op, 0, out)

    def _binary(self, op, onnx_type: str):
        attrs = op.get_attributes()
        if attrs.get("auto_broadcast", "numpy") not in ("numpy", "none"):
            self._unsupported(op, f"auto_broadcast {attrs['auto_broadcast']}")
        out = self._node(onnx_type, [self._float(op, 0), self._float(op, 1)], self._out_name(op))
        self._set(op, 0, out)

    def _op_Add(self, op):
        self._binary(op, "Add")

    def _op_Subtract(self, op):
        self._binary(op, "Sub")

    def _op_Multiply(self, op):
        self._binary(op, "Mul")

    # -- convolution ----------------------------------------------------------------------
    def _op_Convolution(self, op):
        self._conv(op, grouped=False)

    def _op_GroupConvolution(self, op):
        self._conv(op, grouped=True)

    def _conv(self, op, grouped: bool):
        attrs = op.get_attributes()
        weights = self._get(op, 1)
        if not isinstance(weights, np.ndarray):
            self._unsupported(op, "weights must be constant")
        weights = weights.astype(np.float32)
        group = 1
        if grouped:  # (G, O/G, I/G, kh, kw) -> (O, I/G, kh, kw)
            group = weights.shape[0]
            weights = weights.reshape((-1,) + weights.shape[2:])
        out_ch = weights.shape[0]
        onnx_attrs = {
            "strides": list(attrs["strides"]),
            "dilations": list(attrs["dilations"]),
            "group": group,
            "kernel_shape": list(weights.shape[2:]),
        }
        auto_pad = str(attrs.get("auto_pad", "explicit")).lower()
        if auto_pad in ("explicit", "notset"):
            onnx_attrs["pads"] = list(attrs["pads_begin"]) + list(attrs["pads_end"])
        elif auto_pad in ("same_upper", "same_lower", "valid"):
            onnx_attrs["auto_pad"] = auto_pad.upper()
        else:
            self._unsupported(op, f"auto_pad {auto_pad}")

        # The bias Add that follows (a (1, O, 1, 1) constant) becomes the Conv's bias.
        bias_op, bias = _bias_add(op, self._consumers(op), out_ch)
        if bias_op is not None:
            self.skip.add(bias_op.get_name())
        out_op = bias_op if bias_op is not None else op
        out_name = self._out_name(out_op)
        base = op.get_friendly_name()
        x_value = self._get(op, 0)

        # int8 path: quantized input, int8 weights, output quantized after [Relu].
        int8 = None
        elu_fq = _elu_then_fq(out_op) if self.mode == "qdq" else None
        if (self.mode == "qdq" and isinstance(x_value, _QTensor)
                and (_leads_to_fq(out_op) or elu_fq is not None)):
            depthwise = grouped and weights.shape[1] == 1 and group == out_ch
            # A dense conv without padding can take per-channel codes (a concat of tensors
            # quantized differently): their scales and zero points go into weights and bias.
            mixed = (x_value.per_channel and group == 1
                     and not any(onnx_attrs.get("pads", [0])) and "auto_pad" not in onnx_attrs)
            if (not x_value.per_channel or mixed
                    or (depthwise and np.all(x_value.zp == x_value.zp.flat[0]))):
                int8 = _int8_weights(op.input_value(1).get_node(), grouped)
        fold = rec = None
        if int8 is not None and x_value.per_channel and group == 1:
            w_q, w_scale, x_scale, bias = _fold_input_channels(*int8, x_value, bias)
            x = self._dequantize(_QTensor(x_value.q_name, np.array(x_scale, np.float32),
                                          np.array(0, np.uint8)), f"{base}/in0")
            int8 = None
            rec = self._int8_conv_record(base, w_q, w_scale, x_scale, bias)
        if int8 is not None:
            w_q, w_scale = int8
            if x_value.per_channel:  # depthwise: channel c of x meets row c of w
                fold = x_value.scale.astype(np.float64)
                x = self._dequantize(x_value, f"{base}/in0", scale_one=True)
                x_scale = 1.0
            else:
                x = self._dequantize(x_value, f"{base}/in0")
                x_scale = float(x_value.scale)
            rec = self._int8_conv_record(
                base, w_q, w_scale * (fold if fold is not None else 1.0), x_scale, bias)
        elif rec is None:
            x = self._float(op, 0)
            rec = _ConvRecord(
                weight_name=self._name(f"{base}/weights"), bias_name=self._name(f"{base}/bias"),
                weights=weights, bias=bias,
            )
        self._node("Conv", [x, rec.weight_name, rec.bias_name], out_name, **onnx_attrs)
        self.convs[out_name] = rec
        if rec.w_scale is not None and elu_fq is not None:
            out_name = self._quantize_before_elu(rec, out_name, *elu_fq)
        self._set(out_op, 0, out_name)

    def _int8_conv_record(self, base: str, w_q, w_scale, x_scale: float, bias) -> _ConvRecord:
        """A record for int8 weights, with the weight and bias DequantizeLinear nodes."""
        rec = _ConvRecord(weight_name="", bias_name="", weights=w_q, bias=bias,
                          w_scale=w_scale, x_scale=x_scale)
        wdq = self._name(f"{base}/weights_dq")
        bdq = self._name(f"{base}/bias_dq")
        rec.dq_names = {
            "w": self._name(f"{base}/weights_q"), "w_scale": self._name(f"{base}/w_scale"),
            "w_zp": self._name(f"{base}/w_zp"), "b": self._name(f"{base}/bias_q"),
            "b_scale": self._name(f"{base}/b_scale"), "b_zp": self._name(f"{base}/b_zp"),
        }
        d = rec.dq_names
        self.nodes.append(self.onnx.helper.make_node(
            "DequantizeLinear", [d["w"], d["w_scale"], d["w_zp"]], [wdq], name=wdq, axis=0))
        self.nodes.append(self.onnx.helper.make_node(
            "DequantizeLinear", [d["b"], d["b_scale"], d["b_zp"]], [bdq], name=bdq, axis=0))
        rec.weight_name, rec.bias_name = wdq, bdq
        return rec

    def _quantize_before_elu(self, rec: _ConvRecord, conv_out: str, elu, fq) -> str:
        """Quantize a Conv's output ahead of the Elu that follows it; returns the dequantized name.

        The IR only quantizes after the Elu, but an integer convolution needs a quantized
        output. The range is derived from the FakeQuantize after the Elu, per channel:
        positive values pass Elu unchanged (up to ``high``), and below ``ln(step / 2)``
        Elu is within half an output step of ``-alpha``, so nothing lower needs a code.
        The per-channel steps are folded into the conv's rows (exact: its weight scales are
        per row), leaving a per-tensor QuantizeLinear (scale 1, zero point z) that fuses
        into QLinearConv, and a per-tensor DequantizeLinear (scale 1) times the channel
        steps (a broadcast Mul: per-axis DequantizeLinear is slow) feeding the float Elu.
        """
        alpha = float(elu.get_attributes().get("alpha", 1.0))
        il, ih, ol, oh = (_channel_vector(_const_of(fq.input_value(i).get_node()), fq, self)
                          for i in range(1, 5))
        levels = int(fq.get_attributes()["levels"])
        channels = len(rec.bias)
        il, ih, ol, oh = (np.broadcast_to(v, (channels,)).astype(np.float64)
                          for v in (il, ih, ol, oh))
        out_step = np.maximum((oh - ol) / (levels - 1), 1e-12)
        floor = np.maximum(il, -alpha)  # the lowest value Elu's output keeps
        low = np.where(floor > -alpha * (1 - 1e-6),
                       np.log(np.maximum(1 + floor / alpha, 1e-12)),  # clipped above -alpha
                       np.log(out_step / (2 * alpha)))
        low = np.minimum(low, -1e-6)
        high = np.maximum(ih, 1e-6)
        zp = int(np.clip(np.round(255 * np.median(-low / (high - low))), 1, 254))
        step = np.maximum(high / (255 - zp), -low / zp)
        base = conv_out
        uniform = bool(np.all(step == step[0]))  # a per-tensor FakeQuantize after the Elu
        if not uniform:
            rec.out_mult = (1.0 / step) * (rec.out_mult if rec.out_mult is not None else 1.0)
        s = self._init(f"{base}/pre_elu_q_scale",
                       np.array(step[0] if uniform else 1.0, np.float32))
        z = self._init(f"{base}/pre_elu_q_zp", np.array(zp, np.uint8))
        q = self._node("QuantizeLinear", [conv_out, s, z], self._name(f"{base}/pre_elu_q"))
        dz = self._init(f"{base}/pre_elu_dq_zp", np.array(zp, np.uint8))
        dq = self._node("DequantizeLinear", [q, s, dz], self._name(f"{base}/pre_elu_dq"))
        if uniform:
            return dq
        steps = self._init(f"{base}/pre_elu_steps", step.astype(np.float32).reshape(1, -1, 1, 1))
        return self._node("Mul", [dq, steps], self._name(f"{base}/pre_elu"))

    def _finalize_convs(self) -> None:
        """Write every Conv's weight and bias initializers, with any rescaling applied."""
        for rec in self.convs.values():
            mult = rec.out_mult if rec.out_mult is not None else np.ones(len(rec.bias))
            bias = rec.bias.astype(np.float64) * mult
            if rec.w_scale is None:
                w = rec.weights.astype(np.float64) * mult.reshape(-1, 1, 1, 1)
                self.inits[rec.weight_name] = w.astype(np.float32)
                self.inits[rec.bias_name] = bias.astype(np.float32)
                continue
            d = rec.dq_names
            w_scale = rec.w_scale * mult
            b_scale = rec.x_scale * w_scale
            b_q = np.round(bias / np.where(b_scale == 0, 1.0, b_scale))
            if np.abs(b_q).max(initial=0) >= 2**31 - 1:
                raise ModelError(f"bias of {rec.weight_name} does not fit int32", path=self.path)
            self.inits[d["w"]] = rec.weights.astype(np.int8)
            self.inits[d["w_scale"]] = w_scale.astype(np.float32)
            self.inits[d["w_zp"]] = np.zeros(len(w_scale), np.int8)
            self.inits[d["b"]] = b_q.astype(np.int32)
            self.inits[d["b_scale"]] = b_scale.astype(np.float32)
            self.inits[d["b_zp"]] = np.zeros(len(w_scale), np.int32)

    # -- fake quantize --------------------------------------------------------------------
    def _op_FakeQuantize(self, op):
        attrs = op.get_attributes()
        levels = int(attrs["levels"])
        ranges = [self._get(op, i) for i in range(1, 5)]
        if not all(isinstance(r, np.ndarray) for r in ranges):
            self._unsupported(op, "ranges must be constant")
        il, ih, ol, oh = (_channel_vector(r, op, self) for r in ranges)
        if self.mode == "drop":
            self._set(op, 0, self._get(op, 0))
            return
        if self.mode == "qdq":
            q = _qparams(il, ih, ol, oh, levels)
            if q is not None:
                self._set(op, 0, self._quantize(op, *q))
                return
        self._set(op, 0, self._emulate_fq(op, il, ih, ol, oh, levels))

    def _quantize(self, op, scale: np.ndarray, zp: np.ndarray) -> _QTensor:
        """QuantizeLinear for a FakeQuantize; per-channel ranges folded into convs if possible."""
        base = op.get_friendly_name()
        x = self._get(op, 0)
        if isinstance(x, _QTensor):  # FQ of an FQ: requantize from float
            x = self._float(op, 0)
        if scale.ndim == 1 and self._fold_into_producer(op, scale, zp):
            s = self._init(f"{base}/q_scale", np.array(1.0, np.float32))
            z = self._init(f"{base}/q_zp", np.array(0, np.uint8))
            q_name = self._node("QuantizeLinear", [x, s, z], self._name(f"{base}/q"))
            return _QTensor(q_name, scale, zp)
        # The codes describe the FakeQuantize's output (scale, zp) either way; a folded
        # normalisation only changes how they are computed from the graph input.
        folded = self._fold_normalisation(op, scale, zp) if scale.ndim == 0 else None
        q_scale, q_zp = scale, zp
        if folded is not None:
            x, q_scale, q_zp = folded
        attrs = {}
        if scale.ndim == 1 and np.all(zp == zp.flat[0]) and np.all(scale > 0):
            # Per-axis QuantizeLinear runs element by element in onnxruntime (55 ms for a
            # 128x32x57 tensor on a loaded 2-core machine); dividing by the channel scales
            # first (a broadcast Mul) leaves a vectorized per-tensor one with scale 1.
            inv = self._init(f"{base}/inv_scale", (1.0 / scale.astype(np.float64)).astype(
                np.float32).reshape(1, -1, 1, 1))
            x = self._node("Mul", [x, inv], self._name(f"{base}/per_channel"))
            q_scale, q_zp = np.array(1.0, np.float32), np.array(zp.flat[0], np.uint8)
        elif scale.ndim == 1:
            attrs = {"axis": 1}
        s = self._init(f"{base}/q_scale", q_scale)
        z = self._init(f"{base}/q_zp", q_zp)
        q_name = self._node("QuantizeLinear", [x, s, z], self._name(f"{base}/q"), **attrs)
        return _QTensor(q_name, scale, zp)

    def _fold_normalisation(self, op, scale: np.ndarray, zp: np.ndarray):
        """(graph input, scale, zero point) when FQ quantizes ``input * m + a`` directly.

        ``Q(x m + a; s, z) = Q(x; s / m, z + a / s)`` when ``a / s`` is an integer (within
        a 50th of a step here: the input's first quantization then needs no float ops).
        Only for uniform ``m > 0`` and ``a`` over the channels. None otherwise.
        """
        add = op.input_value(0).get_node()
        if add.get_type_name() != "Add" or len(self._consumers(add)) != 1:
            return None
        mul = add.input_value(0).get_node()
        a = _const_of(add.input_value(1).get_node())
        if mul.get_type_name() != "Multiply" or a is None or len(self._consumers(mul)) != 1:
            return None
        m = _const_of(mul.input_value(1).get_node())
        src = mul.input_value(0).get_node()
        if src.get_type_name() == "Convert":
            src = src.input_value(0).get_node()
        if m is None or src.get_type_name() != "Parameter":
            return None
        if np.ptp(m) != 0 or np.ptp(a) != 0 or m.flat[0] <= 0:
            return None
        m, a = float(m.flat[0]), float(a.flat[0])
        offset = float(zp) + a / float(scale)
        if abs(offset - round(offset)) > 0.02 or not 0 <= round(offset) <= 255:
            return None
        x = self._get(mul, 0)
        return x, np.array(float(scale) / m, np.float32), np.array(round(offset), np.uint8)

    def _fold_into_producer(self, op, scale: np.ndarray, zp: np.ndarray) -> bool:
        """Per-channel FQ of Relu(Conv): divide the conv's rows by the scales instead.

        Then a scalar QuantizeLinear (scale 1, zero point 0) gives the per-channel codes,
        and the conv stays a QLinearConv candidate. Only when every consumer is a
        depthwise conv (which folds the scales back into its weights).
        """
        if np.any(zp != 0) or np.any(scale <= 0):
            return False
        relu = op.input_value(0).get_node()
        if relu.get_type_name() != "Relu" or len(self._consumers(relu)) != 1:
            return False
        conv_out = self._get(relu, 0)
        rec = self.convs.get(conv_out) if isinstance(conv_out, str) else None
        if rec is None or self.producer.get(conv_out) != "Conv":
            return False
        conv_like = op.input_value(0).get_node().input_value(0).get_node()
        if len(self._consumers(conv_like)) != 1:
            return False
        for c in self._consumers(op):
            if c.get_type_name() != "GroupConvolution":
                return False
            w = c.input_value(1).get_partial_shape()
            # (G, O/G, I/G, kh, kw) with G == C and O/G == I/G == 1: depthwise
            if not w.is_static or list(w.to_shape())[:3] != [len(scale), 1, 1]:
                return False
        rec.out_mult = (1.0 / scale.astype(np.float64)) * (
            rec.out_mult if rec.out_mult is not None else 1.0)
        return True

    def _emulate_fq(self, op, il, ih, ol, oh, levels) -> str:
        """FakeQuantize in float ops: clamp(round((x - il) / s_in), 0, L-1) * s_out + ol."""
        base = op.get_friendly_name()
        shape = (1, -1, 1, 1) if il.ndim == 1 else ()
        il64, ih64, ol64, oh64 = (v.astype(np.float64) for v in (il, ih, ol, oh))
        inv = np.where(ih64 > il64, (levels - 1) / np.where(ih64 > il64, ih64 - il64, 1), 0)

        def c(name: str, v) -> str:
            return self._init(f"{base}/{name}", np.asarray(v, np.float32).reshape(shape))

        t = self._node("Sub", [self._float(op, 0), c("in_low", il64)], self._name(f"{base}/sub"))
        t = self._node("Mul", [t, c("in_inv_step", inv)], self._name(f"{base}/mul"))
        t = self._node("Round", [t], self._name(f"{base}/round"))
        t = self._node("Max", [t, c("zero", 0.0)], self._name(f"{base}/max"))
        t = self._node("Min", [t, c("top", levels - 1.0)], self._name(f"{base}/min"))
        t = self._node("Mul", [t, c("out_step", (oh64 - ol64) / (levels - 1))],
                       self._name(f"{base}/step"))
        return self._node("Add", [t, c("out_low", ol64)], self._out_name(op))


# -- small graph helpers ------------------------------------------------------------------
def _constant(op) -> np.ndarray:
    data = np.array(op.get_data())
    return data.astype(np.float32) if data.dtype.kind == "f" else data


def _np_type(ov_type) -> type:
    name = ov_type.to_string() if hasattr(ov_type, "to_string") else str(ov_type)
    table = {"f16": np.float32, "f32": np.float32, "f64": np.float32, "i8": np.int8,
             "u8": np.uint8, "i32": np.int32, "i64": np.int64}
    if name not in table:
        raise ModelError(f"unsupported element type {name}")
    return table[name]


def _reshape_target(shape: tuple, target: np.ndarray, attrs: dict) -> tuple:
    out = [int(v) for v in target.reshape(-1)]
    if attrs.get("special_zero", False):
        out = [shape[i] if v == 0 else v for i, v in enumerate(out)]
    return tuple(out)


def _const_input(node) -> np.ndarray | None:
    """The constant second input of a binary op (as float64), else None."""
    if node.get_input_size() != 2:
        return None
    src = node.input_value(1).get_node()
    if src.get_type_name() != "Constant":
        return None
    return np.array(src.get_data()).astype(np.float64)


def _bias_add(conv, consumers: list, out_ch: int):
    """(Add op, bias (O,)) when the conv's only consumer adds a (1, O, 1, 1) constant."""
    zeros = np.zeros(out_ch, np.float32)
    if len(consumers) != 1 or consumers[0].get_type_name() != "Add":
        return None, zeros
    add = consumers[0]
    for port in (0, 1):
        if add.input_value(1 - port).get_node().get_name() != conv.get_name():
            continue
        src = add.input_value(port).get_node()
        if src.get_type_name() != "Constant":
            continue
        b = np.array(src.get_data()).astype(np.float32)
        if b.shape in ((1, out_ch, 1, 1), (out_ch, 1, 1), (1, 1, 1, 1), (1,), ()):
            return add, np.broadcast_to(b.reshape(-1), (out_ch,)).astype(np.float32)
    return None, zeros


def _fold_input_channels(w_q, w_scale, x: _QTensor, bias):
    """Move per-input-channel activation scales and zero points into a dense conv.

    ``y = b + sum_i W[o, i] s_w[o] s_i (q_i - z_i)``: with ``s = max_i s_i`` the codes are
    read as ``s * q`` (zero point 0), the weights become ``W s_w s_i / s`` requantized per
    output row (int8), and ``-s sum_i W'[o, i] z_i`` joins the bias. Exact except for the
    weight requantization; only valid without padding (a padded code would be 0, not z_i).
    Returns (int8 weights, weight scales (O,), input scale, float bias (O,)).
    """
    s_in = x.scale.astype(np.float64)
    s_ref = float(s_in.max())
    shape = (1, -1) + (1,) * (w_q.ndim - 2)
    v = w_q.astype(np.float64) * w_scale.reshape((-1,) + (1,) * (w_q.ndim - 1))
    v = v * (s_in / s_ref).reshape(shape)
    zp_term = (v * x.zp.astype(np.float64).reshape(shape)).reshape(len(v), -1).sum(axis=1)
    new_scale = np.abs(v).reshape(len(v), -1).max(axis=1) / 127.0
    new_scale = np.where(new_scale > 0, new_scale, 1.0)
    q = np.clip(np.round(v / new_scale.reshape((-1,) + (1,) * (w_q.ndim - 1))), -127, 127)
    new_bias = bias.astype(np.float64) - s_ref * zp_term
    return q.astype(np.int8), new_scale, s_ref, new_bias.astype(np.float32)


def _elu_then_fq(node):
    """(Elu op, FakeQuantize op) when ``node`` feeds only an Elu that feeds only a 256-level
    FakeQuantize with constant ranges, else None."""
    cons = [t.get_node() for t in node.output(0).get_target_inputs()]
    if len(cons) != 1 or cons[0].get_type_name() != "Elu":
        return None
    elu = cons[0]
    cons = [t.get_node() for t in elu.output(0).get_target_inputs()]
    if len(cons) != 1 or cons[0].get_type_name() != "FakeQuantize":
        return None
    fq = cons[0]
    if int(fq.get_attributes()["levels"]) != 256:
        return None
    if any(_const_of(fq.input_value(i).get_node()) is None for i in range(1, 5)):
        return None
    return elu, fq


def _const_of(node) -> np.ndarray | None:
    """The value of a Constant (possibly behind a Convert) as float64, else None."""
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        return None
    return np.array(node.get_data()).astype(np.float64)


def _leads_to_fq(node) -> bool:
    """Whether ``node``'s output reaches a FakeQuantize through at most a single Relu."""
    for _ in range(2):
        cons = [t.get_node() for t in node.output(0).get_target_inputs()]
        if len(cons) != 1:
            return False
        node = cons[0]
        if node.get_type_name() == "FakeQuantize":
            return True
        if node.get_type_name() != "Relu":
            return False
    return False


def _int8_weights(node, grouped: bool):
    """(int8 weights (O, I/g, kh, kw), per-output-channel scale (O,)) or None.

    Matches [Reshape] <- Multiply(scale) <- [Subtract(zero point)] <- Convert <- int8 const,
    the way the IR stores quantized weights. Zero points must round to 0.
    """
    reshape = None
    if node.get_type_name() == "Reshape":
        reshape = node
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Multiply":
        return None
    scale = _const_input(node)
    node = node.input_value(0).get_node()
    zp = np.zeros(1)
    if node.get_type_name() == "Subtract":
        zp = _const_input(node)
        node = node.input_value(0).get_node()
    if scale is None or zp is None or node.get_type_name() != "Convert":
        return None
    src = node.input_value(0).get_node()
    if src.get_type_name() != "Constant" or src.get_output_element_type(0).to_string() != "i8":
        return None
    if np.abs(zp - np.round(zp)).max() > 1e-2 or np.any(np.round(zp) != 0):
        return None
    q = np.array(src.get_data()).astype(np.int8)
    full_scale = np.broadcast_to(scale, q.shape)
    if reshape is not None:
        target = np.array(reshape.input_value(1).get_node().get_data())
        shape = _reshape_target(q.shape, target, reshape.get_attributes())
        q, full_scale = q.reshape(shape), full_scale.reshape(shape)
    if grouped:
        q = q.reshape((-1,) + q.shape[2:])
        full_scale = full_scale.reshape((-1,) + full_scale.shape[2:])
    per_row = full_scale.reshape(full_scale.shape[0], -1)
    if not np.all(per_row == per_row[:, :1]):
        return None  # not per output channel
    return q, per_row[:, 0].astype(np.float64)


def _channel_vector(r: np.ndarray, op, conv: _Converter) -> np.ndarray:
    """A FakeQuantize range as a scalar () or a per-channel (C,) float64 array."""
    r = np.asarray(r, np.float64)
    if r.size == 1:
        return r.reshape(())
    if r.ndim == 4 and r.shape[0] == 1 and r.shape[2:] == (1, 1):
        return r.reshape(-1)
    conv._unsupported(op, f"range shape {r.shape}")


def _qparams(il, ih, ol, oh, levels: int):
    """(scale, uint8 zero point) when the FakeQuantize is exactly a Q/DQ pair, else None.

    FakeQuantize maps x to ``k = round((clamp(x, il, ih) - il) / s_in)`` and outputs
    ``ol + k * s_out``. QuantizeLinear/DequantizeLinear give the same when
    ``levels == 256``, the input and output grids have the same step and ``-il / s``
    is (nearly) an integer zero point in [0, 255] (then ``ol`` must equal ``il``).
    """
    if levels != 256:
        return None
    if np.any(ih <= il) or np.any(oh <= ol):
        return None
    s_in = (ih - il) / (levels - 1)
    s_out = (oh - ol) / (levels - 1)
    if not np.allclose(s_in, s_out, rtol=1e-3, atol=0) or not np.allclose(il, ol, rtol=1e-3,
                                                                          atol=1e-6):
        return None
    # The IR stores ranges in fp16, so -il / s lands within a few hundredths of the integer
    # it was made from (e.g. 127.98 for 128); a quarter step is the most we round away.
    zp = -il / s_in
    if np.abs(zp - np.round(zp)).max() > 0.25 or zp.min() < -0.25 or zp.max() > 255.25:
        return None
    return s_out.astype(np.float32), np.round(zp).astype(np.uint8)
