"""The INT8 ONNX graph as OpenVINO runs it faster: integer weights where the IR had them.

posecli's INT8 import (:mod:`posecli.network.importers.openvino_qdq`) gives int8 weights
only to convolutions whose outputs are quantized: the QDQ shape onnxruntime fuses into
QLinearConv. The network's last convolutions (their outputs are the maps) keep float
weights, although the IR had quantized them and their inputs are quantized, so OpenVINO
ran them in float32. :func:`integer_weights` writes such weights, where they lie exactly on
a per-channel int8 grid, as int8 codes times a scale, so OpenVINO runs the convolutions in
integers as it does the IR's: the same weights, the same AP on both shared COCO sets.

What still differs from the IR (per-layer counters, one thread, AMD EPYC Zen 5, ~19 ms a
frame): the import requantizes each CPM convolution's output ahead of its Elu (onnxruntime
needs that to run the convolution in integers), which OpenVINO runs as eight separate Elu
kernels (0.75 ms). Dropping that rounding step let OpenVINO fuse them but moved AP on the
4-photo COCO set by -1.8 points (+1.0 on the 80-photo set), so it stays.
"""

from __future__ import annotations

import numpy as np

#: Weights count as int8 codes when each lies within this fraction of a step of the grid.
GRID_TOLERANCE = 1e-3


def rewrite_for_openvino(model) -> dict:
    """Apply the rewrite to ``model`` (an ``openvino.Model``) in place; how often it applied."""
    done = {"convolutions_given_integer_weights": integer_weights(model)}
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
    """The data of input ``index`` (None: whichever input is) when it is a Constant (through
    Converts and Reshapes of one), as float64, else None."""
    indices = [index] if index is not None else range(node.get_input_size())
    for i in indices:
        src = node.input_value(i).get_node()
        while src.get_type_name() in ("Convert", "Reshape", "Unsqueeze") and src.get_input_size():
            src = src.input_value(0).get_node()
        if src.get_type_name() == "Constant":
            return np.asarray(src.get_data(), dtype=np.float64)
    return None


def _variable_index(node) -> int:
    """The input of a binary ``node`` that is not a constant."""
    first = node.input_value(0).get_node()
    while first.get_type_name() in ("Convert", "Reshape", "Unsqueeze") and first.get_input_size():
        first = first.input_value(0).get_node()
    return 1 if first.get_type_name() == "Constant" else 0


def _opset():
    try:
        import openvino.opset13 as ops
    except ImportError:  # OpenVINO before 2024.2
        import openvino.runtime.opset13 as ops
    return ops
