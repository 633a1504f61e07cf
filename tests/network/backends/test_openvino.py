"""posecli.network.backends: the OpenVINO runtime behind PoseModel, the ``auto`` choice, the fallback.

Accuracy: OpenVINO's maps are compared with onnxruntime's for the same model file on the
real COCO photos (the stated tolerances below). Choice: tiny generated models in a temp
store, where both runtimes really run and are really timed. Fallback: a real subprocess in
which ``import openvino`` fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from posecli.errors import DeviceError, ModelError
from posecli.network.backends import choice
from posecli.network.session import PoseModel
from posecli.network.store import model_path

from tests.helpers import make_tiny_model
from tests.helpers import fast, photo, photo_clip, posecli_cmd, run, subprocess_env

ov = pytest.importorskip("openvino")

NAME = "tiny-pose"
# OpenVINO vs onnxruntime on the same INT8 file (both quantize activations, with their own
# rounding, and OpenVINO fuses the requantization ahead of each Elu into the convolution, see
# posecli/network/backends/openvino_rewrite.py): measured max 0.090 (PAF) / mean 0.0004 on the
# mini set, 0.059 / 0.0005 on the first 20 photos of the 80-photo set (0.072 before the fusion);
# onnxruntime INT8 differs from float32 by up to 0.22, so the bound sits between.
INT8_MAX, INT8_MEAN = 0.15, 0.002
FP32_MAX = 1e-3  # float32 on both (OpenVINO with INFERENCE_PRECISION_HINT=f32)


def _maps_diff(a, b) -> tuple[float, float]:
    d = np.concatenate([np.abs(a.heatmaps - b.heatmaps).ravel(), np.abs(a.pafs - b.pafs).ravel()])
    return float(d.max()), float(d.mean())


# -- accuracy: maps within a stated tolerance of onnxruntime's ----------------------------------
@pytest.mark.parametrize("fixture, max_tol, mean_tol", [("default_model_int8", INT8_MAX, INT8_MEAN),
                                                         ("default_model", FP32_MAX, FP32_MAX / 10)])
def test_openvino_maps_match_onnxruntime_on_the_real_photos(request, mini_set, fixture, max_tol, mean_tol):
    from posecli.inference.estimator import PoseEstimator
    from posecli.io.images import read_image

    path = request.getfixturevalue(fixture)
    on_ov = PoseEstimator(str(path), device="cpu", runtime="openvino")
    on_ort = PoseEstimator(str(path), device="cpu", runtime="onnxruntime")
    assert on_ov.model.provider == "OpenVINO:CPU" and on_ort.model.provider == "CPUExecutionProvider"
    for p in mini_set["images"]:
        image = read_image(p)
        worst, mean = _maps_diff(on_ov.maps(image), on_ort.maps(image))
        assert worst <= max_tol and mean <= mean_tol, (p.name, worst, mean)
        assert len(on_ov(image).people) == len(on_ort(image).people), p.name


def test_a_shape_gives_the_same_maps_on_its_dynamic_and_its_static_network(default_model_int8, mini_set):
    from posecli.inference.estimator import PoseEstimator
    from posecli.io.images import read_image

    est = PoseEstimator(str(default_model_int8), device="cpu", runtime="openvino")
    image = read_image(mini_set["images"][0])
    first, _, third = (est.maps(image) for _ in range(3))
    compiled = est.model.describe()["openvino"]["compiled"]
    assert [c["shape"] == "dynamic" for c in compiled] == [True, False]  # the 2nd run compiled a static one
    assert all(c["precision"] == "f32" for c in compiled)
    np.testing.assert_array_equal(first.heatmaps, third.heatmaps)
    np.testing.assert_array_equal(first.pafs, third.pafs)


# -- several requests in flight: same results, same order -----------------------------------------
def test_video_with_requests_in_flight_matches_one_frame_at_a_time(default_model_int8, mini_set, tmp_path):
    from posecli.inference.estimator import PoseEstimator
    from posecli.video.run import iter_video_poses

    clip = photo_clip(tmp_path / "clip.mp4", mini_set["images"][0], 24)
    est = PoseEstimator(str(default_model_int8), device="cpu", runtime="openvino")
    assert est.model.concurrent
    results = list(iter_video_poses(est, clip, track=False))
    assert [r.index for r in results] == list(range(24))
    from posecli.video.run import VideoRun

    assert VideoRun(est, clip).source.decode_threads == 1  # the network has the cores
    assert any(c["hint"] == "THROUGHPUT" for c in est.model.describe()["openvino"]["compiled"])
    for r in results:
        alone = est(r.image)
        assert len(alone.people) == len(r.frame.people) > 0
        for a, b in zip(alone.people, r.frame.people):
            np.testing.assert_array_equal(a.xy, b.xy)
            np.testing.assert_array_equal(a.scores, b.scores)


def test_submit_gives_what_run_gives_for_a_batch_with_flip(store, tmp_path):
    from posecli.inference.estimator import PoseEstimator

    make_tiny_model(model_path(NAME, "fp32", store), seed=3)
    est = PoseEstimator(NAME, device="cpu", runtime="openvino", flip=True)
    images = [np.random.default_rng(i).integers(0, 255, (120, 200, 3), dtype=np.uint8) for i in range(3)]
    pending = [est.submit_maps(images[:2]), est.submit_maps(images[2:])]  # two batches in flight
    got = pending[0]() + pending[1]()
    for image, m in zip(images, got):
        ref = est.maps(image)
        np.testing.assert_allclose(m.heatmaps, ref.heatmaps, atol=1e-6)
        np.testing.assert_allclose(m.pafs, ref.pafs, atol=1e-6)


# -- auto: measured once, remembered, never the slower one ---------------------------------------
def test_auto_never_keeps_the_slower_runtime():
    assert choice.verdict_from({"onnxruntime": 0.010, "openvino": 0.012}, (256, 456))["runtime"] == "onnxruntime"
    # within the margin: not worth a second runtime
    assert choice.verdict_from({"onnxruntime": 0.010, "openvino": 0.0097}, (256, 456))["runtime"] == "onnxruntime"
    assert choice.verdict_from({"onnxruntime": 0.010, "openvino": 0.008}, (256, 456))["runtime"] == "openvino"


def test_auto_measures_once_per_model_and_remembers_it_in_the_store(store):
    path = make_tiny_model(model_path(NAME, "fp32", store))
    first = PoseModel.load(NAME, device="cpu")
    assert "measured on this CPU" in first.runtime_note and "remembered" not in first.runtime_note
    table = json.loads((store / choice.CHOICE_FILE).read_text())
    (verdict,) = table.values()
    assert verdict["onnxruntime_ms"] > 0 and verdict["openvino_ms"] > 0 and verdict["compile_s"] > 0
    assert first.runtime == {"openvino": "openvino+onnxruntime", "onnxruntime": "onnxruntime"}[verdict["runtime"]]
    if verdict["openvino_ms"] >= verdict["onnxruntime_ms"]:
        assert first.runtime == "onnxruntime"  # the slower one is never kept
    choice._memory.clear()  # a new process: the verdict comes from the file
    again = PoseModel.load(NAME, device="cpu")
    assert again.runtime == first.runtime and "remembered in the store" in again.runtime_note
    # a changed model file is measured again
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    choice._memory.clear()
    assert "remembered" not in PoseModel.load(NAME, device="cpu").runtime_note
    assert len(json.loads((store / choice.CHOICE_FILE).read_text())) == 2


@pytest.mark.parametrize("planted, runtime, provider", [
    ("openvino", "openvino+onnxruntime", "OpenVINO:CPU+CPUExecutionProvider"),
    ("onnxruntime", "onnxruntime", "CPUExecutionProvider")])
def test_auto_follows_the_remembered_verdict(store, planted, runtime, provider):
    path = make_tiny_model(model_path(NAME, "fp32", store))
    from posecli.network.session import cpu_signature as _cpu_signature

    key = choice.choice_key(path, None, _cpu_signature())
    verdict = {"runtime": planted, "onnxruntime_ms": 2.0, "openvino_ms": 1.0, "size_hw": [256, 456],
               "compile_s": 0.003}
    (store / choice.CHOICE_FILE).write_text(json.dumps({key: verdict}))
    model = PoseModel.load(NAME, device="cpu")
    assert model.provider == provider and model.runtime == runtime and model.device == "cpu"
    if planted == "openvino":  # break-even: 3 ms of compilation / 1 ms saved per frame, 3 of them
        assert model.session.after == 9 and "sizes seen 9+ times" in model.runtime_note
        # a video announces its frames: it needs only to pay back the compilation once
        assert model.session.pays_after == 3 and "videos of 3+ frames" in model.runtime_note


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2]", '{"x": 5}', ""])
def test_a_damaged_verdict_file_is_measured_again_and_rewritten(store, garbage):
    make_tiny_model(model_path(NAME, "fp32", store))
    (store / choice.CHOICE_FILE).write_text(garbage)
    model = PoseModel.load(NAME, device="cpu")
    assert "measured on this CPU" in model.runtime_note
    table = json.loads((store / choice.CHOICE_FILE).read_text())
    assert any(isinstance(v, dict) and model.runtime.startswith(v.get("runtime", "?")) for v in table.values())


@pytest.mark.parametrize("bad", [{"onnxruntime_ms": float("nan")}, {"openvino_ms": "fast"}, {"compile_s": -1},
                                 {"compile_s": True}, {"size_hw": None}, {"runtime": "tensorflow"}])
def test_a_remembered_verdict_with_nonsense_in_it_is_measured_again(store, bad):
    from posecli.network.session import cpu_signature as _cpu_signature

    path = make_tiny_model(model_path(NAME, "fp32", store))
    key = choice.choice_key(path, None, _cpu_signature())
    verdict = {"runtime": "openvino", "onnxruntime_ms": 2.0, "openvino_ms": 1.0, "size_hw": [256, 456],
               "compile_s": 0.1, **bad}
    (store / choice.CHOICE_FILE).write_text(json.dumps({key: verdict}))
    model = PoseModel.load(NAME, device="cpu")
    assert "measured on this CPU" in model.runtime_note and "remembered" not in model.runtime_note


def test_a_verdict_file_that_is_a_folder_does_not_stop_anything(store):
    make_tiny_model(model_path(NAME, "fp32", store))
    (store / choice.CHOICE_FILE).mkdir()
    model = PoseModel.load(NAME, device="cpu")
    assert "measured on this CPU" in model.runtime_note
    choice._memory.clear()
    assert "measured on this CPU" in PoseModel.load(NAME, device="cpu").runtime_note  # nothing kept on disk
    assert (store / choice.CHOICE_FILE).is_dir()


def test_a_model_outside_the_store_runs_on_onnxruntime_unless_asked(store, tiny_model):
    auto = PoseModel.load(str(tiny_model), device="cpu")
    assert auto.runtime == "onnxruntime" and "outside the store" in auto.runtime_note
    asked = PoseModel.load(str(tiny_model), device="cpu", runtime="openvino")
    assert asked.runtime == "openvino" and asked.device == "cpu"
    assert asked.describe()["runtime"] == "openvino"
    assert not (store / choice.CHOICE_FILE).exists()


def test_compiled_networks_are_cached_in_the_store(store):
    make_tiny_model(model_path(NAME, "fp32", store))
    model = PoseModel.load(NAME, device="cpu", runtime="openvino")
    model.run(np.zeros((1, 3, 64, 96), np.float32))
    assert model.optimized == store / "openvino-cache"
    assert list(model.optimized.iterdir())


# -- auto with OpenVINO faster: recurring sizes on OpenVINO, one-off sizes on onnxruntime ------------
def test_break_even_is_compilation_over_time_saved():
    from posecli.network.backends.mixed import MAX_AFTER, MIN_AFTER, break_even, switch_after

    assert break_even(0.4, 15.0, 11.0) == 100
    assert break_even(0.4, 28.0, 11.0) == 24
    assert break_even(0.0, 15.0, 11.0) == MIN_AFTER
    assert break_even(0.4, 11.0, 11.0) == MAX_AFTER  # nothing saved: (almost) never
    assert switch_after(0.4, 28.0, 11.0) == 3 * 24 and switch_after(0.4, 11.0, 11.0) == MAX_AFTER


def _mixed(path, after, pays_after=None):
    from posecli.network.backends.choice import open_openvino
    from posecli.network.backends.mixed import MixedSession

    model = PoseModel.load(str(path), device="cpu", runtime="onnxruntime")
    model.session = MixedSession(model.session, lambda: open_openvino(path, None), after, pays_after=pays_after)
    model.runtime = "openvino+onnxruntime"
    return model


def test_a_size_moves_to_openvino_once_it_recurs(store):
    path = make_tiny_model(model_path(NAME, "fp32", store))
    model = _mixed(path, after=3)
    a, b = np.zeros((1, 3, 64, 96), np.float32), np.zeros((1, 3, 64, 128), np.float32)
    for _ in range(2):
        model.run(a)
    model.run(b)
    assert model.session._ov is None  # nothing recurred enough: OpenVINO not even opened
    model.run(a)
    assert model.session.describe()["sizes_on_openvino"] == [[1, 3, 64, 96]]
    model.expect((1, 3, 64, 128), frames=3)  # a video of that size: on OpenVINO from its next frame
    model.submit(b)()
    assert model.session.describe()["sizes_on_openvino"] == [[1, 3, 64, 96], [1, 3, 64, 128]]
    model.expect((2, 3, 64, 64), frames=2)  # too short to pay back
    model.run(np.zeros((2, 3, 64, 64), np.float32))
    assert len(model.session.describe()["sizes_on_openvino"]) == 2


def test_a_video_that_pays_back_moves_before_its_size_has_recurred_enough(store):
    # after=12 is patience with one-off photos; a video announcing 4 frames (the break-even
    # point) is sure to come, so it runs on OpenVINO from its first frame
    path = make_tiny_model(model_path(NAME, "fp32", store))
    model = _mixed(path, after=12, pays_after=4)
    model.expect((1, 3, 64, 96), frames=3)  # shorter than the break-even: stays
    model.submit(np.zeros((1, 3, 64, 96), np.float32))()
    assert model.session._ov is None
    model.expect((1, 3, 64, 128), frames=4)
    model.submit(np.zeros((1, 3, 64, 128), np.float32))()
    assert model.session.describe()["sizes_on_openvino"] == [[1, 3, 64, 128]]
    assert model.session.describe()["openvino_for_videos_of_frames"] == 4


def test_a_video_on_the_mixed_session_matches_one_frame_at_a_time(default_model_int8, mini_set, tmp_path):
    from posecli.inference.estimator import PoseEstimator
    from posecli.video.run import iter_video_poses

    clip = photo_clip(tmp_path / "clip.mp4", mini_set["images"][1], 12)
    est = PoseEstimator(_mixed(default_model_int8, after=10))
    results = list(iter_video_poses(est, clip, track=False))  # 12 frames >= 10: OpenVINO from frame 0
    assert [r.index for r in results] == list(range(12))
    assert len(est.model.session.describe()["sizes_on_openvino"]) == 1
    for r in results:
        alone = est(r.image)
        assert len(alone.people) == len(r.frame.people) > 0
        for a, b in zip(alone.people, r.frame.people):
            np.testing.assert_array_equal(a.xy, b.xy)


# -- errors -----------------------------------------------------------------------------------------
def test_runtime_errors_are_typed_and_name_the_parameter(store, tiny_model, tmp_path):
    with pytest.raises(DeviceError, match=r"runtime='fast' is unknown \(choose from auto, onnxruntime, openvino\)"):
        PoseModel.load(str(tiny_model), runtime="fast")
    with pytest.raises(DeviceError, match=r"runtime='openvino' runs on the CPU; device='cuda' needs runtime='onnxruntime'"):
        PoseModel.load(str(tiny_model), device="cuda", runtime="openvino")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(ModelError) as err:
        PoseModel.load(str(bad), runtime="openvino")
    assert str(err.value).startswith(f"{bad}: OpenVINO cannot read the model") and "\n" not in str(err.value)


def test_cli_runtime_option(store, tiny_model, tmp_path):
    image = photo(tmp_path / "p.jpg")
    res = run("image", image, *fast(tiny_model), "--runtime", "openvino", "--verbose")
    assert res.exit_code == 0, res.output
    assert "provider: OpenVINO:CPU" in res.stderr and "runtime: --runtime openvino (asked for)" in res.stderr
    res = run("models", "info", tiny_model, "--runtime", "openvino", "--device", "cpu", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["runtime"] == "openvino"
    clip = photo_clip(tmp_path / "clip.mp4", image, 6, size_wh=(160, 120))
    res = run("video", clip, "--out", tmp_path / "clip.json", *fast(tiny_model), "--runtime", "openvino", "-v", "-q")
    assert res.exit_code == 0, res.output
    assert "runtime: --runtime openvino (asked for)" in res.stderr and "6 frames in " in res.stderr
    assert re.search(r"OpenVINO networks compiled: 1x3x64x\d+ \(throughput, \d+ streams?\)", res.stderr), res.stderr
    (tmp_path / "photos").mkdir()
    photo(tmp_path / "photos" / "a.jpg")
    res = run("batch", tmp_path / "photos", "--out", tmp_path / "poses", *fast(tiny_model), "--runtime", "onnxruntime",
              "--verbose")
    assert res.exit_code == 0, res.output
    assert "provider: CPUExecutionProvider" in res.stderr and "1 inputs in " in res.stderr
    assert "OpenVINO networks" not in res.stderr  # onnxruntime only
    res = run("image", image, *fast(tiny_model), "--runtime", "tensorflow")
    assert res.exit_code == 2 and "--runtime" in res.stderr
    res = run("image", image, *fast(tiny_model)[:-4], "--device", "cuda", "--runtime", "openvino")
    assert res.exit_code == 1 and res.stderr.strip().splitlines()[-1].startswith("Error: --runtime openvino runs on the CPU")


# -- the fallback: no openvino installed -------------------------------------------------------------
HIDE = "import sys; sys.modules['openvino'] = None; from posecli.cli import run; sys.argv[0] = 'posecli'; run()"


def _without_openvino(*args, store):
    env = {**subprocess_env(), "POSECLI_MODELS": str(store)}
    cmd = [sys.executable, "-c", HIDE, *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_without_openvino_auto_runs_on_onnxruntime_and_asking_for_it_says_what_to_install(store, tmp_path):
    make_tiny_model(model_path(NAME, "fp32", store))
    image = photo(tmp_path / "p.jpg")
    # a verdict for OpenVINO remembered from when it was installed must not break anything
    from posecli.network.session import cpu_signature as _cpu_signature

    key = choice.choice_key(model_path(NAME, "fp32", store), None, _cpu_signature())
    (store / choice.CHOICE_FILE).write_text(json.dumps({key: {"runtime": "openvino", "onnxruntime_ms": 2.0,
                                                              "openvino_ms": 1.0, "size_hw": [256, 456]}}))
    res = _without_openvino("image", image, "-m", NAME, "--device", "cpu", "--verbose", "--height", "64", store=store)
    assert res.returncode == 0, res.stderr
    assert "provider: CPUExecutionProvider" in res.stderr
    assert "auto: onnxruntime (openvino is not installed)" in res.stderr
    assert json.loads(res.stdout)["images"][0]["file"] == str(image)
    (store / choice.CHOICE_FILE).unlink()
    res = _without_openvino("image", image, "-m", NAME, "--device", "cpu", "--verbose", "--height", "64", store=store)
    assert res.returncode == 0 and "auto: onnxruntime (openvino is not installed)" in res.stderr
    assert not (store / choice.CHOICE_FILE).exists()  # nothing measured
    res = _without_openvino("image", image, "-m", NAME, "--runtime", "openvino", store=store)
    assert res.returncode == 1 and res.stdout == ""
    # the CLI words the parameter as its flag; the extra's own requirements come first where
    # the installed metadata lists them
    line = res.stderr.strip()
    assert line.startswith("Error: --runtime openvino needs the 'openvino' package: pip install '"), line
    assert line.endswith("pip install 'posecli[openvino]'") and "\n" not in line, line


def test_help_imports_no_runtime():
    code = ("import sys; from posecli.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('openvino', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                         timeout=60, check=False)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert subprocess.run(posecli_cmd("image", "--help"), capture_output=True, env=subprocess_env(),
                          timeout=60, check=False).returncode == 0


def test_one_photo_on_auto_does_not_import_openvino_even_where_it_is_faster(store, tmp_path):
    """A one-off input size runs on onnxruntime: the first frame pays for no OpenVINO import or compile."""
    from posecli.network.session import cpu_signature as _cpu_signature

    path = make_tiny_model(model_path(NAME, "fp32", store))
    key = choice.choice_key(path, None, _cpu_signature())
    (store / choice.CHOICE_FILE).write_text(json.dumps({key: {
        "runtime": "openvino", "onnxruntime_ms": 20.0, "openvino_ms": 10.0, "size_hw": [256, 456], "compile_s": 0.4}}))
    image = photo(tmp_path / "p.jpg")
    code = ("import sys; from posecli.cli import main\n"
            f"sys.argv = ['posecli', 'image', {str(image)!r}, '-m', {NAME!r}, '--device', 'cpu', '--verbose']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('openvino' in sys.modules, file=sys.stderr)")
    env = {**subprocess_env(), "POSECLI_MODELS": str(store)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "provider: OpenVINO:CPU+CPUExecutionProvider" in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "False"
    assert not (store / "openvino-cache").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_with_requests_in_flight_stops_cleanly(default_model_int8, mini_set, tmp_path, sig, code):
    """Requests still running when a video is interrupted finish before the interpreter shuts
    down (their callbacks need it): exit 130/143 and valid JSON, never an abort."""
    clip = photo_clip(tmp_path / "clip.mp4", mini_set["images"][0], 400, size_wh=(640, 360))
    for attempt in range(3):  # the abort this guards against depended on timing
        out = tmp_path / f"poses{attempt}.json"
        proc = subprocess.Popen(posecli_cmd("video", clip, "--out", out, "-m", default_model_int8, "--device", "cpu",
                                            "--runtime", "openvino"),
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                env={**subprocess_env(), "POSECLI_PROGRESS_SECONDS": "0.1"})  # progress lines, often
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda p=proc, c=chunks: c.extend(iter(lambda: p.stderr.read1(4096), b"")),
                                  daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while not re.search(rb"\b([5-9]|\d\d+)/400\b", b"".join(chunks)):  # a few frames done
                assert proc.poll() is None and time.monotonic() < deadline, b"".join(chunks)[-300:]
                time.sleep(0.01)
            proc.send_signal(sig)
            assert proc.wait(30) == code, b"".join(chunks)[-300:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(5)
        assert b"FATAL" not in b"".join(chunks)
        doc = json.loads(out.read_text())
        assert doc["complete"] is False and len(doc["frames"]) >= 5


# -- the INT8 graph as OpenVINO runs it: the IR's shapes, the same numbers --------------------------
def _kernels(core, model, x):
    """(layer type, precision) counts of the compiled network, and its outputs for ``x``."""
    import collections

    model.reshape(list(x.shape))
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    kinds = collections.Counter(
        (op.get_rt_info()["layerType"].astype(str), op.get_rt_info()["runtimePrecision"].astype(str))
        for op in compiled.get_runtime_model().get_ordered_ops())
    kinds = {k: v for k, v in kinds.items() if k[0] not in ("Const", "Reshape", "Input", "Output")}
    outputs = compiled.create_infer_request().infer({0: x})
    return kinds, sorted((np.array(outputs[port]) for port in compiled.outputs), key=lambda a: a.shape[1])


def test_the_rewritten_int8_graph_compiles_to_the_kernels_of_the_ir(default_model_int8, mini_set):
    from posecli.maps import letterbox
    from posecli.network.tensor import to_tensor
    from posecli.io.images import read_image
    from posecli.network.backends.openvino_rewrite import rewrite_for_openvino

    from tests.helpers import IR_XML

    core = ov.Core()
    info = PoseModel.load(str(default_model_int8), device="cpu", runtime="onnxruntime").info
    x = to_tensor(letterbox(read_image(mini_set["images"][0]), 256, info.stride, info.pad_value)[0], info)
    as_written, maps_before = _kernels(core, core.read_model(str(default_model_int8)), x)
    model = core.read_model(str(default_model_int8))
    done = rewrite_for_openvino(model)
    rewritten, maps_after = _kernels(core, model, x)
    ir, _ = _kernels(core, core.read_model(str(IR_XML)), x)
    assert done == {"convolutions_given_integer_weights": 2, "elu_requantizations_in_one_step": 8,
                    "convolution_inputs_as_signed_codes": 9}
    assert as_written.get(("Convolution", "f32")) == 2 and as_written.get(("Subgraph", "u8")) == 8
    # every convolution in integers, each Elu fused, and the IR's u8/i8 input split: on AMX (Xeon,
    # Sapphire Rapids class) 49 u8 + 9 i8 convolutions (measured); the IR gave 58 u8 on AMD Zen 5
    assert rewritten == ir
    for a, b in zip(maps_after, maps_before):  # the same rounding steps, OpenVINO's own kernels
        assert np.abs(a - b).max() <= INT8_MAX and np.abs(a - b).mean() <= INT8_MEAN


def test_weights_count_as_integer_only_when_they_lie_on_a_per_channel_grid():
    from posecli.network.backends.openvino_rewrite import on_int8_grid

    rng = np.random.default_rng(0)
    scale = rng.uniform(0.001, 0.1, 8)
    codes = rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8)
    codes[:, 0, 0, 0] = 127  # each row reaches the end of the grid, as quantized weights do
    got_codes, got_scale = on_int8_grid((codes * scale[:, None, None, None]).astype(np.float32))
    np.testing.assert_array_equal(got_codes, codes)
    np.testing.assert_allclose(got_scale, scale, rtol=1e-6)
    assert on_int8_grid(rng.normal(size=(8, 4, 3, 3)).astype(np.float32)) == (None, None)  # float weights
    nan = (codes * scale[:, None, None, None]).astype(np.float32)
    nan[0, 0, 0, 0] = np.nan
    assert on_int8_grid(nan) == (None, None)


def _u8_codes_into_a_convolution(zero_point, *, second_branch: str | None = None):
    """x (1, 4, 6, 6) -> FakeQuantize [0, 255] -> Convert u8 -> Convert f32 -> Subtract
    ``zero_point`` -> Multiply -> Convolution; ``second_branch`` adds a second dequantize of
    the same codes to an Add ("subtract": with zero point 128; "plain": without a Subtract)."""
    import openvino.opset13 as ops

    c = lambda v: ops.constant(np.asarray(v, np.float32))
    x = ops.parameter([1, 4, 6, 6], np.float32)
    to_u8 = ops.convert(ops.fake_quantize(x, c(-2.0), c(2.0), c(0.0), c(255.0), 256), "u8")
    dequantize = lambda zp: ops.multiply(ops.subtract(ops.convert(to_u8, "f32"), c(zp)), c(4 / 255))
    w = np.random.default_rng(1).normal(size=(3, 4, 3, 3))
    y = ops.convolution(dequantize(zero_point), c(w), [1, 1], [0, 0], [0, 0], [1, 1])
    outputs = [y]
    if second_branch:
        other = dequantize(128.0) if second_branch == "subtract" else ops.convert(to_u8, "f32")
        outputs.append(ops.add(other, c(1.0)))
    return ov.Model(outputs, [x])


def _types(model) -> list:
    return sorted(op.get_type_name() + ":" + op.get_output_element_type(0).get_type_name()
                  for op in model.get_ops() if op.get_type_name() in ("Convert", "Subtract"))


@pytest.mark.parametrize("zero_point, second_branch, signed", [
    (128.0, None, True), (128.0, "subtract", True),  # every branch of the codes rewritten at once
    (127.0, None, False), ([[[[128.0]], [[128.0]], [[127.0]], [[128.0]]]], None, False),  # not 128 everywhere
    (128.0, "plain", False)])  # a branch reads the u8 codes without the zero point: left alone
def test_u8_codes_with_zero_point_128_become_i8_codes_with_the_same_values(zero_point, second_branch, signed):
    from posecli.network.backends.openvino_rewrite import signed_codes

    model = _u8_codes_into_a_convolution(zero_point, second_branch=second_branch)
    before = _types(model)
    assert signed_codes(model) == int(signed)
    model.validate_nodes_and_infer_types()
    if not signed:
        assert _types(model) == before
        return
    assert "Convert:u8" not in _types(model) and "Subtract:f32" not in _types(model)
    x = np.random.default_rng(2).uniform(-3, 3, (1, 4, 6, 6)).astype(np.float32)
    x[0, 0, 0, :4] = [-2.0, 2.0, 0.0, 4 / 255 * 0.5]  # the ends and a tie
    core = ov.Core()
    got, want = (core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({0: x})
                 for m in (model, _u8_codes_into_a_convolution(zero_point, second_branch=second_branch)))
    for a, b in zip(got.values(), want.values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_a_float32_model_is_left_as_it_is(default_model):
    from posecli.network.backends.openvino_rewrite import rewrite_for_openvino

    model = ov.Core().read_model(str(default_model))
    ops = len(model.get_ops())
    assert rewrite_for_openvino(model) == {"convolutions_given_integer_weights": 0, "elu_requantizations_in_one_step": 0,
                                           "convolution_inputs_as_signed_codes": 0}
    assert len(model.get_ops()) == ops


def test_a_rewrite_that_fails_leaves_the_model_as_written(store, monkeypatch):
    import posecli.network.backends.openvino_rewrite as rewrite

    def broken(model):
        model.get_ordered_ops()[1].set_friendly_name("changed")  # it got halfway
        raise RuntimeError("a graph it did not foresee\nwith a long trace")

    monkeypatch.setattr(rewrite, "rewrite_for_openvino", broken)
    make_tiny_model(model_path(NAME, "fp32", store))
    model = PoseModel.load(NAME, device="cpu", runtime="openvino")
    assert model.session.rewrites == {"skipped": "a graph it did not foresee"}
    assert "changed" not in [op.get_friendly_name() for op in model.session._model.get_ops()]
    hm, paf = model.run(np.zeros((1, 3, 64, 96), np.float32))
    assert hm.shape[0] == paf.shape[0] == 1


def _conv_qdq_elu(path, zero_point: int = 128, quantized: bool = True):
    """A tiny ONNX graph: Conv -> [QuantizeLinear -> DequantizeLinear] -> Elu."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(np.uint8(zero_point), "z")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])]
    if quantized:
        nodes += [helper.make_node("QuantizeLinear", ["c", "s", "z"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"])]
    nodes.append(helper.make_node("Elu", ["d" if quantized else "c"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_one_step_requantization_keeps_the_levels(tmp_path):
    from posecli.network.backends.openvino_rewrite import requantize_in_one_step

    core = ov.Core()
    path = _conv_qdq_elu(tmp_path / "qdq.onnx")
    x = np.random.default_rng(2).normal(size=(1, 3, 16, 16)).astype(np.float32)
    before = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    model = core.read_model(str(path))
    assert requantize_in_one_step(model) == 1
    model.validate_nodes_and_infer_types()
    after = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    a = np.array(before.create_infer_request().infer({0: x})[0])
    b = np.array(after.create_infer_request().infer({0: x})[0])
    step = 0.05
    assert np.abs(a - b).max() <= step * 1.0001  # at most a tie rounded the other way
    assert np.mean(a != b) < 0.01
    levels = np.log1p(np.unique(np.round(b[b > 0] / step, 3)))  # positive outputs stay on the grid
    assert np.allclose(np.expm1(levels), np.round(np.expm1(levels)), atol=1e-3)


@pytest.mark.parametrize("zero_point, quantized", [(128, False), (0, True)])
def test_only_a_round_trip_ahead_of_an_elu_is_rewritten(tmp_path, zero_point, quantized):
    from posecli.network.backends.openvino_rewrite import requantize_in_one_step

    model = ov.Core().read_model(str(_conv_qdq_elu(tmp_path / "m.onnx", zero_point, quantized)))
    # no QDQ: nothing to rewrite; zero point 0: a round trip too (its codes keep only positives)
    assert requantize_in_one_step(model) == (1 if quantized else 0)


@pytest.mark.parametrize("max_frames, moved", [(3, False), (None, True)])
def test_a_video_cut_short_by_max_frames_is_not_compiled_for(store, tmp_path, max_frames, moved):
    # 10 frames pay back the compilation (pays_after 6), the 3 that --max-frames keeps do not
    from posecli.inference.estimator import PoseEstimator
    from posecli.video.run import VideoOptions, VideoRun

    path = make_tiny_model(model_path(NAME, "fp32", store))
    model = _mixed(path, after=100, pays_after=6)
    est = PoseEstimator(model, height=64)
    clip = photo_clip(tmp_path / "clip.mp4", photo(tmp_path / "p.jpg"), 10, size_wh=(160, 120))
    job = VideoRun(est, clip, tmp_path / "poses.json", options=VideoOptions(max_frames=max_frames))
    job.run()
    assert job.frames_done == (max_frames or 10)
    assert bool(model.session.describe()["sizes_on_openvino"]) is moved
