"""Subgraph patterns of an OpenVINO IR and the quantization arithmetic the converter uses.

Pure functions over ``openvino`` nodes and NumPy arrays: how the IR stores int8 weights,
a conv's bias Add, a FakeQuantize that is exactly a Q/DQ pair, moving per-channel
activation scales into weights. The records :class:`QTensor` (a quantized activation) and
:class:`ConvRecord` (a Conv whose initializers are written last) are shared by
:mod:`.openvino_graph` and :mod:`.openvino_qdq`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError


# -- records -----------------------------------------------------------------------------
@dataclass
class QTensor:
    """A quantized activation: ``value = (q - zp) * scale``; scale/zp scalar or per channel."""

    q_name: str
    scale: np.ndarray  # () or (C,), float32
    zp: np.ndarray  # same shape, uint8

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim == 1


@dataclass
class ConvRecord:
    """A Conv whose weight/bias initializers are written at the end (scales may change)."""

    weight_name: str
    bias_name: str
    weights: np.ndarray  # float32 (O, I/g, kh, kw), or int8 when ``w_scale`` is set
    bias: np.ndarray  # float32 (O,)
    w_scale: np.ndarray | None = None  # (O,) per-channel scale of int8 weights
    x_scale: float = 1.0  # input scale (int8 convs)
    out_mult: np.ndarray | None = None  # (O,) multiplies every output channel
    dq_names: dict = field(default_factory=dict)  # int8 convs: initializer names


# -- small graph helpers ------------------------------------------------------------------
def constant(op) -> np.ndarray:
    data = np.array(op.get_data())
    return data.astype(np.float32) if data.dtype.kind == "f" else data


def np_type(ov_type) -> type:
    name = ov_type.to_string() if hasattr(ov_type, "to_string") else str(ov_type)
    table = {"f16": np.float32, "f32": np.float32, "f64": np.float32, "i8": np.int8,
             "u8": np.uint8, "i32": np.int32, "i64": np.int64}
    if name not in table:
        raise ModelError(f"unsupported element type {name}")
    return table[name]


def reshape_target(shape: tuple, target: np.ndarray, attrs: dict) -> tuple:
    out = [int(v) for v in target.reshape(-1)]
    if attrs.get("special_zero", False):
        out = [shape[i] if v == 0 else v for i, v in enumerate(out)]
    return tuple(out)


def const_input(node) -> np.ndarray | None:
    """The constant second input of a binary op (as float64), else None."""
    if node.get_input_size() != 2:
        return None
    src = node.input_value(1).get_node()
    if src.get_type_name() != "Constant":
        return None
    return np.array(src.get_data()).astype(np.float64)


def bias_add(conv, consumers: list, out_ch: int):
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


def fold_input_channels(w_q, w_scale, x: QTensor, bias):
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


def elu_then_fq(node):
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
    if any(const_of(fq.input_value(i).get_node()) is None for i in range(1, 5)):
        return None
    return elu, fq


def const_of(node) -> np.ndarray | None:
    """The value of a Constant (possibly behind a Convert) as float64, else None."""
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        return None
    return np.array(node.get_data()).astype(np.float64)


def leads_to_fq(node) -> bool:
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


def int8_weights(node, grouped: bool):
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
    scale = const_input(node)
    node = node.input_value(0).get_node()
    zp = np.zeros(1)
    if node.get_type_name() == "Subtract":
        zp = const_input(node)
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
        shape = reshape_target(q.shape, target, reshape.get_attributes())
        q, full_scale = q.reshape(shape), full_scale.reshape(shape)
    if grouped:
        q = q.reshape((-1,) + q.shape[2:])
        full_scale = full_scale.reshape((-1,) + full_scale.shape[2:])
    per_row = full_scale.reshape(full_scale.shape[0], -1)
    if not np.all(per_row == per_row[:, :1]):
        return None  # not per output channel
    return q, per_row[:, 0].astype(np.float64)


def channel_vector(r: np.ndarray, op, conv) -> np.ndarray:
    """A FakeQuantize range as a scalar () or a per-channel (C,) float64 array."""
    r = np.asarray(r, np.float64)
    if r.size == 1:
        return r.reshape(())
    if r.ndim == 4 and r.shape[0] == 1 and r.shape[2:] == (1, 1):
        return r.reshape(-1)
    conv._unsupported(op, f"range shape {r.shape}")


def qparams(il, ih, ol, oh, levels: int):
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