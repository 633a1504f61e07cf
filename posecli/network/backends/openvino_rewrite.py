"""The INT8 ONNX graph as OpenVINO runs it fastest: the shapes of the IR it came from.

posecli's INT8 import (:mod:`posecli.network.importers.openvino_qdq`) writes the QDQ shapes
that onnxruntime fuses into QLinearConv. Two of them cost OpenVINO time it does not spend on
the IR; each rewrite here gives OpenVINO the IR's shape back with the same numbers:

- **Float weights on a convolution whose input is quantized** (the last two layers: their
  outputs are the maps, not quantized, so onnxruntime runs them in float anyway). OpenVINO
  ran them in float32. Their weights lie exactly on the IR's per-channel int8 grid, so
  :func:`integer_weights` writes them as int8 codes times a scale, and OpenVINO runs them
  in integers (the same weights).
- **A quantize-dequantize round trip between a convolution and its Elu** (the eight CPM
  layers: onnxruntime needs the convolution's output quantized to run it in integers).
  OpenVINO ran each as a separate Elu kernel (0.75 ms of 19 ms a frame, one thread, AMD
  EPYC Zen 5). :func:`requantize_in_one_step` writes the round trip as the one
  FakeQuantize it amounts to (the same levels, in float), which OpenVINO fuses into the
  convolution with the Elu, as it does the IR's. (Dropping the round trip instead also
  fused, but it is a rounding step fewer than onnxruntime's: AP on the 4-photo COCO set
  moved by -1.8 points.)

- **Unsigned codes with zero point 128 where the IR has signed codes** (the input of conv1 and
  the inputs of the eight convolutions after an Elu or the CPM residual Add: ranges around 0).
  On a CPU with AMX (Intel Xeon, Sapphire Rapids class) OpenVINO ran the IR's as i8
  convolutions and ours as u8 ones. :func:`signed_codes` writes each as codes - 128 with no
  zero point (the same numbers: the maps came out bit-identical), and OpenVINO picks i8 as
  for the IR: the network alone about 3 % faster there (8 interleaved runs, 1 and 2
  threads: median paired time ratio 0.905-1.003 per run, 0.966 overall, 7 of 8 below 1;
  a loaded shared machine), level with the IR (0.95-1.01).

After these, the compiled network has the IR's kernels (58 integer convolutions, 9 of them
with i8 inputs, no separate Elu); AP on the shared COCO sets: 0.754 / 0.411 (0.754 / 0.403 before, onnxruntime float32
0.754 / 0.410). A graph without these shapes comes back unchanged.
"""

from __future__ import annotations

import numpy as np

from ..importers.openvino_patterns import const_of

#: Weights count as int8 codes when each lies within this fraction of a step of the grid.
GRID_TOLERANCE = 1e-3
#: u8 codes with this zero point are i8 codes shifted by it; the levels of 8-bit codes.
SIGNED_SHIFT, U8_LEVELS = 128, 256


def rewrite_for_openvino(model) -> dict:
    """Apply both rewrites to ``model`` (an ``openvino.Model``) in place; how often each applied."""
    done = {"convolutions_given_integer_weights": integer_weights(model),
            "elu_requantizations_in_one_step": requantize_in_one_step(model),
            "convolution_inputs_as_signed_codes": signed_codes(model)}
    if any(done.values()):
        model.validate_nodes_and_infer_types()
    return done


def integer_weights(model) -> int:
    """Give int8 weights (codes, Convert, per-channel Multiply) to each Convolution whose
    input is dequantized and whose float weights lie on a per-channel int8 grid."""
    ops = _opset()
    count = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        weights_node = op.input_value(1).get_node()
        if weights_node.get_type_name() != "Constant" or _dequantized(op.input_value(0).get_node()) is None:
            continue
        if weights_node.get_output_element_type(0).get_type_name() != "f32":
            continue  # float16 weights (and the f16 graph around them) stay as they are
        w = np.asarray(weights_node.get_data(), dtype=np.float32)
        codes, scale = on_int8_grid(w)
        if codes is None:
            continue
        shape = (-1,) + (1,) * (w.ndim - 1)
        dequantized = ops.multiply(ops.convert(ops.constant(codes), "f32"),
                                   ops.constant(scale.reshape(shape).astype(np.float32)))
        op.input(1).replace_source_output(dequantized.output(0))
        count += 1
    return count


def requantize_in_one_step(model) -> int:
    """Write each quantize-dequantize round trip that feeds an Elu (through at most a
    Multiply by constants) as one FakeQuantize with float levels; returns how many."""
    ops = _opset()
    count = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Elu":
            continue
        port = op.input(0)
        node = port.get_source_output().get_node()
        if _dequantized(node) is None and node.get_type_name() == "Multiply" and _constant_input(node) is not None:
            port = node.input(_variable_index(node))  # per-channel steps after the round trip
            node = port.get_source_output().get_node()
        chain = _dequantized(node)
        if chain is None or not _exact_codes(chain[0]):
            continue
        fq, zero_point, scale = chain
        x = fq.input_value(0)
        levels = _float_levels(x, [(_constant_input(fq, i) - zero_point) * scale for i in (3, 4)])
        if levels is None:
            continue
        one_step = ops.fake_quantize(x, fq.input_value(1), fq.input_value(2), ops.constant(levels[0]),
                                     ops.constant(levels[1]), int(fq.get_attributes()["levels"]))
        port.replace_source_output(one_step.output(0))
        count += 1
    return count


def signed_codes(model) -> int:
    """Write each convolution input quantized as u8 codes with zero point 128 (FakeQuantize to
    [0, 255], Convert u8, then on every branch Convert f32, Subtract 128) as i8 codes without
    a zero point (FakeQuantize to [-128, 127], Convert i8, Convert f32): the same values;
    returns how many quantizers it rewrote."""
    ops = _opset()
    count = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution"):
            continue
        chain = _dequantized(op.input_value(0).get_node())
        subtracts = _subtracts_of_128(chain[0]) if chain is not None else None
        if not subtracts:
            continue
        fq = chain[0]
        codes = ops.fake_quantize(fq.input_value(0), fq.input_value(1), fq.input_value(2),
                                  ops.constant(np.float32(-SIGNED_SHIFT)),
                                  ops.constant(np.float32(U8_LEVELS - 1 - SIGNED_SHIFT)), U8_LEVELS)
        signed = ops.convert(ops.convert(codes, "i8"), "f32")
        for subtract in subtracts:  # every branch, so no u8 copy of the codes stays behind
            subtract.output(0).replace(signed.output(0))
        count += 1
    return count


def _subtracts_of_128(fq) -> list | None:
    """The Subtract nodes of every dequantize branch of ``fq`` when it gives u8 codes [0, 255]
    (256 levels) and each branch subtracts zero point 128 everywhere, else None."""
    if not _exact_codes(fq) or int(fq.get_attributes()["levels"]) != U8_LEVELS:
        return None
    if not np.all(_constant_input(fq, 3) == 0):
        return None
    to_u8 = next(iter(fq.output(0).get_target_inputs())).get_node()
    if to_u8.get_output_element_type(0).get_type_name() != "u8":
        return None
    subtracts = []
    for to_float in (port.get_node() for port in to_u8.output(0).get_target_inputs()):
        if to_float.get_type_name() != "Convert":
            return None
        for port in to_float.output(0).get_target_inputs():
            node = port.get_node()
            zero_point = _constant_input(node, 1) if node.get_type_name() == "Subtract" else None
            if port.get_index() != 0 or zero_point is None or not np.all(zero_point == SIGNED_SHIFT):
                return None
            subtracts.append(node)
    return subtracts


def _exact_codes(fq) -> bool:
    """Whether ``fq``'s output levels are whole numbers that its integer Convert keeps exactly
    (output range [low, low + levels - 1] inside the Convert's type)."""
    consumers = list(fq.output(0).get_target_inputs())
    if len(consumers) != 1:
        return False
    bounds = {"u8": (0, 255), "i8": (-128, 127)}.get(consumers[0].get_node().get_output_element_type(0).get_type_name())
    low, high = _constant_input(fq, 3), _constant_input(fq, 4)
    if bounds is None or low is None or high is None:
        return False
    levels = int(fq.get_attributes().get("levels", 256))
    return bool(np.all(low == np.round(low)) and np.all(high - low == levels - 1)
                and low.min() >= bounds[0] and high.max() <= bounds[1])


def _float_levels(x, ends: list[np.ndarray]) -> list[np.ndarray] | None:
    """The output range ``ends`` (low, high; one value or one per channel) shaped to
    broadcast over ``x`` (N, C, ...), as float32; None when it cannot."""
    rank = x.get_partial_shape().rank
    if not rank.is_static or rank.get_length() < 2:
        return None
    rank = rank.get_length()
    size = max(e.size for e in ends)
    if size == 1:
        return [np.full((1,) * rank, float(e.reshape(-1)[0]), np.float32) for e in ends]
    channels = x.get_partial_shape()[1]
    if not channels.is_static or channels.get_length() != size:
        return None
    shape = (1, size) + (1,) * (rank - 2)
    return [np.broadcast_to(e.reshape(-1), (size,)).reshape(shape).astype(np.float32) for e in ends]


def on_int8_grid(w: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(int8 codes, per-output-channel scale)`` with ``codes * scale == w`` (to
    :data:`GRID_TOLERANCE` of a step), or ``(None, None)`` when ``w`` is not on such a grid."""
    if w.ndim < 2 or w.size == 0 or not np.all(np.isfinite(w)):
        return None, None
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    peak = np.abs(rows).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    codes = np.round(rows / scale[:, None])
    if np.abs(codes * scale[:, None] - rows).max() > GRID_TOLERANCE * scale.min():
        return None, None
    return codes.astype(np.int8).reshape(w.shape), scale


def _dequantized(node):
    """``(FakeQuantize, zero point, scale)`` when ``node`` dequantizes a FakeQuantize's integer
    codes (Multiply <- [Subtract] <- Convert <- Convert <- FakeQuantize), else None."""
    if node.get_type_name() != "Multiply" or _constant_input(node) is None:
        return None
    scale = _constant_input(node)
    node = node.input_value(_variable_index(node)).get_node()
    zero_point = np.zeros(1)
    if node.get_type_name() == "Subtract":
        zero_point = _constant_input(node, 1)
        if zero_point is None:
            return None
        node = node.input_value(0).get_node()
    for _ in range(2):  # to float from the integer codes, which FakeQuantize gave as float
        if node.get_type_name() != "Convert":
            return None
        node = node.input_value(0).get_node()
    if node.get_type_name() != "FakeQuantize":
        return None
    return node, zero_point.astype(np.float64), scale.astype(np.float64)


def _constant_input(node, index: int | None = None):
    """The value (float64) of input ``index`` of ``node`` (None: whichever input is) when it is
    a Constant, possibly behind a Convert (:func:`const_of`), else None."""
    for i in [index] if index is not None else range(node.get_input_size()):
        value = const_of(node.input_value(i).get_node())
        if value is not None:
            return value
    return None


def _variable_index(node) -> int:
    """The input of a binary ``node`` that is not a constant."""
    return 1 if const_of(node.input_value(0).get_node()) is not None else 0


def _opset():
    try:
        import openvino.opset13 as ops
    except ImportError:  # OpenVINO before 2024.2
        import openvino.runtime.opset13 as ops
    return ops
