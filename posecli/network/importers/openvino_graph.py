"""The OpenVINO IR walk: ops in topological order, constants folded, float ONNX emitted.

Every subgraph that depends only on constants (the weights: int8 constant -> Convert ->
Subtract(zero point) -> Multiply(scale) [-> Reshape]) is folded in NumPy. The rest maps
onto a handful of ONNX ops:

    Parameter -> graph input (N, C, H, W all dynamic but C), Convolution / GroupConvolution
    (+ the bias Add that follows) -> Conv, Add / Multiply / Subtract, Relu, Elu, Concat,
    Reshape, Result -> graph output (an Identity when the names differ).

FakeQuantize and integer convolutions are :mod:`.openvino_qdq`'s (mixed in); the shape
of the graph the walk reads and the IR's conventions are :mod:`.openvino_patterns`'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ModelError
from .openvino_patterns import ConvRecord, QTensor, bias_add, const_input, constant, np_type, reshape_target
from .openvino_qdq import QdqMixin

OPSET = 17
IR_VERSION = 8  # onnxruntime >= 1.10 loads it


class Converter(QdqMixin):
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
        self.convs: dict[str, ConvRecord] = {}  # conv output tensor -> record
        self.producer: dict[str, str] = {}  # tensor -> op type that made it
        self.skip: set[str] = set()  # OV nodes already consumed (fused bias adds)
        self.facts: dict = {}  # size_hw, outputs_hw, pad_value: read off the graph for the metadata

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
                self._set(op, 0, constant(op))
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
        base = min(names) if names else f"{op.get_friendly_name()}:{port}"
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
        if isinstance(value, QTensor):
            return self._dequantize(value, f"{op.get_friendly_name()}/in{port}")
        return value

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
            const = const_input(node)
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
        want = min(names) if names else op.get_friendly_name()
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
                ch, h, w = list(shape)[1:]
                dims = ["N", ch.get_length() if ch.is_static else "C", "h", "w"]
                if h.is_static and w.is_static:
                    self.facts.setdefault("outputs_hw", {})[want] = (h.get_length(), w.get_length())
        return helper.make_tensor_value_info(want, TP.FLOAT, dims)

    def _fold(self, op) -> np.ndarray:
        """Evaluate an op whose inputs are all constants, in NumPy (float32 for floats)."""
        kind = op.get_type_name()
        args = [self._get(op, i) for i in range(op.get_input_size())]
        attrs = op.get_attributes()
        if kind == "Convert":
            return args[0].astype(np_type(attrs["destination_type"]))
        if kind in ("Add", "Subtract", "Multiply"):
            a, b = (x.astype(np.float32) if x.dtype.kind == "f" else x for x in args)
            return {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply}[kind](a, b)
        if kind == "Reshape":
            return args[0].reshape(reshape_target(args[0].shape, args[1], attrs))
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
        if np_type(op.get_attributes()["destination_type"]) is not np.float32:
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
                and all(isinstance(v, QTensor) and not v.per_channel for v in values)):
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
                self._set(op, 0, QTensor(q, scale, zp))
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
        bias_op, bias = bias_add(op, self._consumers(op), out_ch)
        if bias_op is not None:
            self.skip.add(bias_op.get_name())
        out_op = bias_op if bias_op is not None else op
        out_name = self._out_name(out_op)
        base = op.get_friendly_name()

        # int8 path: quantized input, int8 weights, output quantized after [Relu] or Elu.
        int8 = (self._int8_conv(op, out_op, weights, grouped, group, onnx_attrs, bias)
                if self.mode == "qdq" else None)
        if int8 is not None:
            x, rec, elu_fq = int8
        else:
            x, elu_fq = self._float(op, 0), None
            rec = ConvRecord(
                weight_name=self._name(f"{base}/weights"), bias_name=self._name(f"{base}/bias"),
                weights=weights, bias=bias,
            )
        self._node("Conv", [x, rec.weight_name, rec.bias_name], out_name, **onnx_attrs)
        self.convs[out_name] = rec
        if rec.w_scale is not None and elu_fq is not None:
            out_name = self._quantize_before_elu(rec, out_name, *elu_fq)
        self._set(out_op, 0, out_name)

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
