"""Convert a float32 ONNX graph to float16 weights and activations, keeping float32 I/O.

GPUs run float16 convolutions on their tensor cores at about twice the float32 rate and
half the memory traffic. The conversion:

* every float32 initializer (and float32 ``Constant`` node) becomes float16; values beyond
  the float16 range are clipped to its largest finite value (a weight that large would
  mean the graph is not meant for float16, so :class:`ModelError` is raised past 1e5);
* each float32 graph input gets a ``Cast`` to float16 before its consumers, and each
  float32 output is produced by a ``Cast`` back to float32 under the output's own name,
  so callers keep feeding and reading float32 arrays;
* float32 type annotations of intermediate values (``value_info``) become float16, and
  ``Cast(to=float)`` nodes inside the graph cast to float16 instead.

Only plain float graphs are accepted: ops whose float inputs must stay float32 in ONNX
(quantization scales, ``Resize`` scales, ...) raise :class:`ModelError`.
"""

from __future__ import annotations

import numpy as np

from ...errors import ModelError

#: Ops whose float32 inputs are parameters that must stay float32 (or are quantized graphs).
_UNSUPPORTED = {
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
    "MatMulInteger", "DynamicQuantizeLinear", "Resize", "Upsample", "RandomNormal",
    "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Loop", "If", "Scan",
}
FP16_MAX = float(np.finfo(np.float16).max)
_TOO_LARGE = 1e5


def convert_float_to_fp16(model, *, source: str | None = None):
    """A float16 copy of ``model`` (an ``onnx.ModelProto``) with float32 inputs/outputs.

    ``source`` names the model in error messages. The input model is not modified.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    bad = sorted({n.op_type for n in graph.node if n.op_type in _UNSUPPORTED or n.domain not in ("", "ai.onnx")})
    if bad:
        raise ModelError(f"cannot convert to float16: the graph uses {', '.join(bad)}", path=source)
    floats = TensorProto.FLOAT
    half = TensorProto.FLOAT16

    # Weights and constants.
    for i, init in enumerate(graph.initializer):
        if init.data_type == floats:
            graph.initializer[i].CopyFrom(_to_half(numpy_helper, init, source))
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == floats:
                    attr.t.CopyFrom(_to_half(numpy_helper, attr.t, source))
                elif attr.name in ("value_float", "value_floats"):
                    raise ModelError("cannot convert to float16: Constant with value_float(s)", path=source)
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == floats:
                    attr.i = half
    for vi in graph.value_info:
        if vi.type.tensor_type.elem_type == floats:
            vi.type.tensor_type.elem_type = half

    # Float32 at the edges: Cast after each input, Cast before each output.
    inits = {t.name for t in graph.initializer}
    taken = {n for node in graph.node for n in (*node.input, *node.output)} | inits
    taken |= {v.name for v in (*graph.input, *graph.output)}

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    head, tail = [], []
    for inp in graph.input:
        if inp.name in inits or inp.type.tensor_type.elem_type != floats:
            continue
        cast = fresh(f"{inp.name}/fp16")
        _rename(graph, inp.name, cast, outputs=False)
        head.append(helper.make_node("Cast", [inp.name], [cast], name=cast, to=half))
    for outp in graph.output:
        if outp.type.tensor_type.elem_type != floats:
            continue
        inner = fresh(f"{outp.name}/fp16")
        _rename(graph, outp.name, inner, outputs=True)  # outputs may also be read inside the graph
        if outp.name in {i.name for i in graph.input}:
            raise ModelError(f"cannot convert to float16: output '{outp.name}' is an input", path=source)
        tail.append(helper.make_node("Cast", [inner], [outp.name], name=f"{outp.name}/fp32", to=floats))
    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def _rename(graph, old: str, new: str, outputs: bool) -> None:
    """Every node input named ``old`` (and with ``outputs``, every node output) becomes ``new``."""
    for node in graph.node:
        for names in (node.input, node.output) if outputs else (node.input,):
            for j, name in enumerate(names):
                if name == old:
                    names[j] = new


def _to_half(numpy_helper, tensor, source):
    """A float16 copy of a float32 TensorProto, clipped to the float16 range."""
    arr = numpy_helper.to_array(tensor)
    big = float(np.abs(arr).max(initial=0.0))
    if big > _TOO_LARGE:
        raise ModelError(
            f"cannot convert to float16: '{tensor.name}' holds {big:.3g}, beyond float16's range",
            path=source,
        )
    half = np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(half, tensor.name)
