"""The runtime side of posecli.network.session: precision choice, session settings, the optimized-graph
cache, batch-size defaults, the float16 converter, and (with a GPU) CUDA / TensorRT.

Everything here runs on tiny generated models except the CUDA tests, which need a GPU
that onnxruntime can use and are skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from posecli.errors import DeviceError, ModelError
from posecli.network.session import (
    CPU_SESSION_CONFIG,
    DEFAULT_BATCH_SIZE,
    PoseModel,
    _resolve,
    cuda_usable,
    default_batch_size,
)
from posecli.network.store import model_path

from tests.helpers import make_tiny_model

NAME = "tiny-pose"
GPU_REASON = "no GPU: onnxruntime's CUDA provider does not load on this machine (cuda_usable() is False)"
needs_cuda = pytest.mark.skipif("not __import__('posecli.network.session').network.session.cuda_usable()", reason=GPU_REASON)


def _stored(store, *precisions) -> dict:
    """Tiny models in the store under NAME, one per precision (different weights each)."""
    return {p: make_tiny_model(model_path(NAME, p, store), seed=i) for i, p in enumerate(precisions)}


def _frame(seed: int = 0, n: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, 64, 96)).astype(np.float32)


# -- precision auto | fp32 | int8 ---------------------------------------------------------
def test_auto_picks_int8_on_the_cpu_when_the_store_has_it(store):
    files = _stored(store, "fp32", "int8")
    assert PoseModel.load(NAME, device="cpu").path == files["int8"]
    assert PoseModel.load(NAME, device="cpu", precision="auto").path == files["int8"]
    assert PoseModel.load(NAME, device="cpu", precision="fp32").path == files["fp32"]
    assert PoseModel.load(NAME, device="cpu", precision="int8").path == files["int8"]


def test_auto_falls_back_to_fp32_without_int8(store):
    files = _stored(store, "fp32")
    assert PoseModel.load(NAME, device="cpu").path == files["fp32"]
    with pytest.raises(ModelError, match=r"\(int8\) is not in the model store \(import it with precision='int8'\)"):
        PoseModel.load(NAME, device="cpu", precision="int8")


def test_auto_on_device_auto_follows_cuda_usable(store, monkeypatch):
    files = _stored(store, "fp32", "int8", "fp16")
    monkeypatch.setattr("posecli.network.session.cuda_usable", lambda: False)
    assert _resolve(NAME, "auto", "auto") == files["int8"]
    monkeypatch.setattr("posecli.network.session.cuda_usable", lambda: True)
    assert _resolve(NAME, "auto", "auto") == files["fp16"]  # a GPU: float16, not INT8
    assert _resolve(NAME, "cuda", "auto") == files["fp16"]
    files["fp16"].unlink()
    assert _resolve(NAME, "cuda", "auto") == files["fp32"]
    assert _resolve(NAME, "cpu", "auto") == files["int8"]


def test_a_path_is_used_as_given(store, tmp_path):
    _stored(store, "fp32", "int8")
    other = make_tiny_model(tmp_path / "elsewhere.onnx")
    assert PoseModel.load(str(other), device="cpu").path == other


def test_unknown_precision_and_device_are_typed_errors(store):
    _stored(store, "fp32")
    with pytest.raises(ModelError, match="unknown precision 'int4'"):
        PoseModel.load(NAME, precision="int4")
    with pytest.raises(DeviceError, match="unknown device 'npu'"):
        PoseModel.load(NAME, device="npu")


def test_cli_precision_option_reaches_the_model(store):
    from click.testing import CliRunner

    from posecli.cli import main

    files = _stored(store, "fp32", "int8")
    runner = CliRunner()
    for precision, want in (("auto", "int8"), ("fp32", "fp32"), ("int8", "int8")):
        r = runner.invoke(main, ["models", "info", NAME, "--device", "cpu", "--precision", precision, "--json"])
        assert r.exit_code == 0, r.output
        assert f'"path": "{files[want]}"' in r.output
    r = runner.invoke(main, ["models", "info", NAME, "--precision", "int4"])
    assert r.exit_code == 2 and "int4" in r.output


# -- CPU session settings and the optimized-graph cache -----------------------------------
def test_cpu_sessions_do_not_spin(store):
    _stored(store, "fp32")
    model = PoseModel.load(NAME, device="cpu")
    opts = model.session.get_session_options()
    for key, value in CPU_SESSION_CONFIG.items():
        assert opts.get_session_config_entry(key) == value


def test_optimized_graph_is_cached_beside_a_stored_model_and_reused(store):
    files = _stored(store, "fp32")
    first = PoseModel.load(NAME, device="cpu")
    cache = first.optimized
    assert cache is not None and cache.is_file()
    assert cache.parent == store and cache.name.startswith(files["fp32"].name + ".")
    assert cache.suffix == ".ort"
    stamp = cache.stat().st_mtime_ns
    second = PoseModel.load(NAME, device="cpu")
    assert second.optimized == cache and cache.stat().st_mtime_ns == stamp  # read, not rewritten
    x = _frame()
    for a, b in zip(first.run(x), second.run(x)):
        np.testing.assert_array_equal(a, b)
    assert second.info == first.info  # metadata survives the optimized graph
    from posecli.network.store import list_models

    assert [m.path for m in list_models(store)] == [files["fp32"]]  # the cache is not a model


def test_a_changed_model_gets_a_fresh_cache(store):
    files = _stored(store, "fp32")
    old = PoseModel.load(NAME, device="cpu").optimized
    make_tiny_model(files["fp32"], seed=5)
    later = time.time() + 5
    os.utime(files["fp32"], (later, later))
    model = PoseModel.load(NAME, device="cpu")
    assert model.optimized != old and model.optimized.is_file() and not old.exists()
    plain = PoseModel.load(str(make_tiny_model(store.parent / "same.onnx", seed=5)), device="cpu")
    x = _frame(1)
    for a, b in zip(model.run(x), plain.run(x)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_damaged_cache_is_rebuilt(store):
    _stored(store, "fp32")
    cache = PoseModel.load(NAME, device="cpu").optimized
    cache.write_bytes(b"not a model")
    model = PoseModel.load(NAME, device="cpu")
    assert model.optimized == cache and cache.stat().st_size > 100


def test_models_outside_the_store_are_not_cached(store, tmp_path):
    path = make_tiny_model(tmp_path / "mine.onnx")
    model = PoseModel.load(str(path), device="cpu")
    assert model.optimized is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["mine.onnx"]


def test_unwritable_store_still_loads(store, monkeypatch):
    _stored(store, "fp32")
    monkeypatch.setattr("posecli.network.backends.onnxruntime.os.access", lambda path, mode: False)  # root ignores chmod
    model = PoseModel.load(NAME, device="cpu")
    assert model.optimized is None
    assert not list(store.glob("*.ort"))
    hm, _ = model.run(_frame())
    assert hm.shape == (1, 19, 8, 12)


# -- batch size defaults ------------------------------------------------------------------
def test_default_batch_size_by_device(store, monkeypatch):
    assert default_batch_size("cpu") == 1
    assert default_batch_size("cuda") == DEFAULT_BATCH_SIZE["cuda"] == 8
    assert default_batch_size("tensorrt") == 8
    monkeypatch.setattr("posecli.network.session.cuda_usable", lambda: False)
    assert default_batch_size("auto") == 1
    monkeypatch.setattr("posecli.network.session.cuda_usable", lambda: True)
    assert default_batch_size("auto") == 8
    with pytest.raises(DeviceError):
        default_batch_size("npu")
    _stored(store, "fp32")
    model = PoseModel.load(NAME, device="cpu")
    assert model.default_batch_size == 1
    assert model.describe()["default_batch_size"] == 1


def test_batches_run_on_the_cpu(store):
    _stored(store, "fp32")
    model = PoseModel.load(NAME, device="cpu")
    x = _frame(2, n=3)
    hm, paf = model.run(x)
    assert hm.shape == (3, 19, 8, 12) and paf.shape == (3, 38, 8, 12)
    one_hm, one_paf = model.run(x[1:2])
    np.testing.assert_allclose(hm[1:2], one_hm, atol=1e-6)


# -- float16 converter --------------------------------------------------------------------
def _tiny_float_graph(onnx):
    """data -> Conv -> Relu -> Conv -> Elu -> (out_a, and Mul by a constant -> out_b)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.array([2, 3, 4, 5], np.int64), "unused_ints"),
    ]
    nodes = [
        helper.make_node("Conv", ["data", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"]),
        helper.make_node("Elu", ["c2"], ["out_a"], alpha=1.0),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(0.5, np.float32))),
        helper.make_node("Mul", ["out_a", "k"], ["out_b"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("out_a", TensorProto.FLOAT, ["N", 4, "H", "W"]),
         helper.make_tensor_value_info("out_b", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_fp16_conversion_keeps_float32_io_and_matches(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, numpy_helper

    from posecli.network.importers.fp16 import convert_float_to_fp16

    model = _tiny_float_graph(onnx)
    half = convert_float_to_fp16(model)
    onnx.checker.check_model(half)
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT  # input untouched
    types = {t.name: t.data_type for t in half.graph.initializer}
    assert types == {"w1": TensorProto.FLOAT16, "b1": TensorProto.FLOAT16,
                     "w2": TensorProto.FLOAT16, "unused_ints": TensorProto.INT64}
    assert [i.name for i in half.graph.input] == ["data"]
    assert [o.name for o in half.graph.output] == ["out_a", "out_b"]
    assert half.graph.node[0].op_type == "Cast" and half.graph.node[-1].op_type == "Cast"
    paths = {}
    for name, m in (("fp32", model), ("fp16", half)):
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(m, str(paths[name]))
    x = np.random.default_rng(4).uniform(-2, 2, (2, 3, 16, 20)).astype(np.float32)
    runs = {k: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"data": x})
            for k, p in paths.items()}
    for a, b in zip(runs["fp32"], runs["fp16"]):
        assert b.dtype == np.float32 and a.shape == b.shape
        # float16 keeps ~3 significant digits; outputs here are within +-4.
        assert np.abs(a - b).max() < 2e-2
    k = [n for n in half.graph.node if n.op_type == "Constant"][0]
    assert numpy_helper.to_array(k.attribute[0].t).dtype == np.float16


def test_fp16_conversion_refuses_quantized_graphs_and_huge_weights():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from posecli.network.importers.fp16 import convert_float_to_fp16

    q = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s"], ["y"])], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1])],
        initializer=[numpy_helper.from_array(np.array(0.1, np.float32), "s")],
    )
    with pytest.raises(ModelError, match="cannot convert to float16: the graph uses QuantizeLinear"):
        convert_float_to_fp16(helper.make_model(q))
    model = _tiny_float_graph(onnx)
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.full(8, 3e5, np.float32), "b1"))
    with pytest.raises(ModelError, match="'b1' holds 3e\\+05, beyond float16's range"):
        convert_float_to_fp16(model, source="m.onnx")


# -- CUDA / TensorRT (GPU machines only) --------------------------------------------------
@pytest.fixture
def gpu_models(store):
    """fp32 and fp16 tiny models in the store (the fp16 one converted from the fp32 one)."""
    onnx = pytest.importorskip("onnx")
    from posecli.network.importers.fp16 import convert_float_to_fp16

    files = _stored(store, "fp32")
    half = convert_float_to_fp16(onnx.load(str(files["fp32"])))
    files["fp16"] = model_path(NAME, "fp16", store)
    onnx.save(half, str(files["fp16"]))
    return files


@needs_cuda
def test_cuda_runs_with_io_binding_and_matches_the_cpu(gpu_models):
    cpu = PoseModel.load(NAME, device="cpu", precision="fp32")
    x = _frame(5, n=4)
    want = cpu.run(x)
    for precision, tol in (("fp32", 1e-3), ("fp16", 2e-2)):
        gpu = PoseModel.load(NAME, device="cuda", precision=precision)
        assert gpu.provider == "CUDAExecutionProvider" and gpu.device == "cuda"
        assert gpu.optimized is None  # the CPU graph cache is for the CPU only
        assert gpu.default_batch_size == 8
        got = gpu.run(x)
        for a, b in zip(want, got):
            assert b.dtype == np.float32 and np.abs(a - b).max() < tol, precision


@needs_cuda
def test_auto_on_a_gpu_picks_cuda_and_fp16(gpu_models):
    model = PoseModel.load(NAME)
    assert model.device == "cuda" and model.path == gpu_models["fp16"]


@needs_cuda
def test_tensorrt_keeps_its_engines_in_the_store(gpu_models, store):
    ort = pytest.importorskip("onnxruntime")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime was built without the TensorRT provider")
    try:
        model = PoseModel.load(NAME, device="tensorrt", precision="fp32")
    except DeviceError as exc:
        pytest.skip(f"TensorRT libraries do not load here: {exc}")
    model.run(_frame(6))
    cache = store / "trt-cache"
    assert cache.is_dir() and any(cache.iterdir())


def test_cuda_is_refused_clearly_without_a_gpu(store):
    if cuda_usable():
        pytest.skip("this machine has a usable GPU")
    _stored(store, "fp32")
    with pytest.raises(DeviceError, match="^device='cuda': ") as err:  # the Python parameter, not the flag
        PoseModel.load(NAME, device="cuda")
    assert err.value.param == "device" and "--" not in str(err.value)
    assert PoseModel.load(NAME).device == "cpu"  # auto falls back quietly
