"""INT8 rewriting for the OpenVINO converter: FakeQuantize as QDQ pairs, integer convs.

FakeQuantize on activations (Intel's calibrated INT8 ranges) is handled per mode:
``"drop"`` passes the float value on, ``"emulate"`` reproduces it exactly in float ops
(Sub, Mul, Round, Max, Min, Mul, Add), ``"qdq"`` (the int8 import) emits
QuantizeLinear/DequantizeLinear with the IR's own ranges (``scale = (high - low) /
(levels - 1)``, zero point ``-low / scale``; uint8). A Conv whose input is quantized and
whose output (after its bias and an optional Relu) is quantized gets int8 weights with
per-output-channel DequantizeLinear (axis 0) and an int32 bias: the QDQ pattern that
onnxruntime fuses into QLinearConv. Per-channel activation ranges cannot be a QLinearConv
scale, so they are folded exactly into weights (see :meth:`QdqMixin._fold_into_producer`).

:class:`QdqMixin` holds these methods; :class:`~.openvino_graph.Converter` mixes it in
(it provides ``_get``, ``_set``, ``_name``, ``_init``, ``_node``, ``_float`` and friends).
"""

from __future__ import annotations

import numpy as np

from .openvino_patterns import (
    ConvRecord,
    QTensor,
    channel_vector,
    const_of,
    elu_then_fq,
    fold_input_channels,
    int8_weights,
    leads_to_fq,
    qparams,
)


class QdqMixin:
    """The int8 half of :class:`~.openvino_graph.Converter` (see the module notes)."""

    def _int8_conv(self, op, out_op, weights: np.ndarray, grouped: bool, group: int, onnx_attrs: dict,
                   bias: np.ndarray):
        """``(input tensor, record, (Elu, FakeQuantize) or None)`` for an integer Conv, else None.

        An integer Conv needs a quantized input, int8 weights in the IR, and an output that
        is quantized (after [Relu], or after an Elu: then it is requantized ahead of it).
        """
        x_value = self._get(op, 0)
        elu_fq = elu_then_fq(out_op)
        if not isinstance(x_value, QTensor) or not (leads_to_fq(out_op) or elu_fq is not None):
            return None
        out_ch = weights.shape[0]
        depthwise = grouped and weights.shape[1] == 1 and group == out_ch
        # A dense conv without padding can take per-channel codes (a concat of tensors
        # quantized differently): their scales and zero points go into weights and bias.
        mixed = (x_value.per_channel and group == 1
                 and not any(onnx_attrs.get("pads", [0])) and "auto_pad" not in onnx_attrs)
        if not (not x_value.per_channel or mixed
                or (depthwise and np.all(x_value.zp == x_value.zp.flat[0]))):
            return None
        int8 = int8_weights(op.input_value(1).get_node(), grouped)
        if int8 is None:
            return None
        base = op.get_friendly_name()
        if x_value.per_channel and group == 1:
            w_q, w_scale, x_scale, bias = fold_input_channels(*int8, x_value, bias)
            x = self._dequantize(QTensor(x_value.q_name, np.array(x_scale, np.float32),
                                         np.array(0, np.uint8)), f"{base}/in0")
            return x, self._int8_conv_record(base, w_q, w_scale, x_scale, bias), elu_fq
        w_q, w_scale = int8
        fold = None
        if x_value.per_channel:  # depthwise: channel c of x meets row c of w
            fold = x_value.scale.astype(np.float64)
            x = self._dequantize(x_value, f"{base}/in0", scale_one=True)
            x_scale = 1.0
        else:
            x = self._dequantize(x_value, f"{base}/in0")
            x_scale = float(x_value.scale)
        rec = self._int8_conv_record(base, w_q, w_scale * (fold if fold is not None else 1.0), x_scale, bias)
        return x, rec, elu_fq

    def _dequantize(self, q: QTensor, base: str, scale_one: bool = False) -> str:
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

    def _int8_conv_record(self, base: str, w_q, w_scale, x_scale: float, bias) -> ConvRecord:
        """A record for int8 weights, with the weight and bias DequantizeLinear nodes."""
        rec = ConvRecord(weight_name="", bias_name="", weights=w_q, bias=bias,
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

    def _quantize_before_elu(self, rec: ConvRecord, conv_out: str, elu, fq) -> str:
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
        il, ih, ol, oh = (channel_vector(const_of(fq.input_value(i).get_node()), fq, self)
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

    # -- fake quantize --------------------------------------------------------------------
    def _op_FakeQuantize(self, op):
        attrs = op.get_attributes()
        levels = int(attrs["levels"])
        ranges = [self._get(op, i) for i in range(1, 5)]
        if not all(isinstance(r, np.ndarray) for r in ranges):
            self._unsupported(op, "ranges must be constant")
        il, ih, ol, oh = (channel_vector(r, op, self) for r in ranges)
        if self.mode == "drop":
            self._set(op, 0, self._get(op, 0))
            return
        if self.mode == "qdq":
            q = qparams(il, ih, ol, oh, levels)
            if q is not None:
                self._set(op, 0, self._quantize(op, *q))
                return
        self._set(op, 0, self._emulate_fq(op, il, ih, ol, oh, levels))

    def _quantize(self, op, scale: np.ndarray, zp: np.ndarray) -> QTensor:
        """QuantizeLinear for a FakeQuantize; per-channel ranges folded into convs if possible."""
        base = op.get_friendly_name()
        x = self._get(op, 0)
        if isinstance(x, QTensor):  # FQ of an FQ: requantize from float
            x = self._float(op, 0)
        if scale.ndim == 1 and self._fold_into_producer(op, scale, zp):
            s = self._init(f"{base}/q_scale", np.array(1.0, np.float32))
            z = self._init(f"{base}/q_zp", np.array(0, np.uint8))
            q_name = self._node("QuantizeLinear", [x, s, z], self._name(f"{base}/q"))
            return QTensor(q_name, scale, zp)
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
        return QTensor(q_name, scale, zp)

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
        a = const_of(add.input_value(1).get_node())
        if mul.get_type_name() != "Multiply" or a is None or len(self._consumers(mul)) != 1:
            return None
        m = const_of(mul.input_value(1).get_node())
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
