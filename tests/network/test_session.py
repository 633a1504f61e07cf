"""Model files that are not what they claim (network.session, network.metadata).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import make_tiny_model
from tests.helpers import (
    photo,
    posecli_cmd,
    run,
    subprocess_env,
)


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 10, "truncated"])
def test_model_files_that_are_not_onnx(content, tmp_path):
    model = tmp_path / "m.onnx"
    if content == "truncated":
        make_tiny_model(model)
        model.write_bytes(model.read_bytes()[:3000])
    else:
        model.write_bytes(content)
    a = photo(tmp_path / "a.jpg")
    r = run("image", a, "--model", model)
    assert r.exit_code == 1
    assert r.stderr == f"Error: {model}: not an ONNX model (cannot be parsed)\n"


def test_model_without_metadata_with_a_broken_sidecar_or_wrong_profile(tmp_path):
    a = photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "bare.onnx", metadata=False)
    side = tmp_path / "bare.json"
    side.write_text("{not json")
    r = run("image", a, "--model", model)
    assert r.exit_code == 1 and r.stderr.startswith(f"Error: {side}: metadata is not valid JSON")
    side.unlink()
    r = run("image", a, "--model", model, "--profile", "body25")
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"Error: {model}: ") and "do not match skeleton 'body25'" in r.stderr
    r = run("image", a, "--model", model, "--profile", "nosuch")
    assert r.exit_code == 1 and "unknown skeleton profile 'nosuch'" in r.stderr


def test_model_whose_paf_outputs_do_not_match_the_skeleton(tmp_path):
    a = photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "wrong.onnx", paf_channels=10)
    r = run("image", a, "--model", model)
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"Error: {model}: output 'pafs' has 10 channels")


# ---------------------------------------------------------------------------------------------
# Issue 19: fixed input shapes, garbage sidecars, GPU devices that do not load
# ---------------------------------------------------------------------------------------------
def test_a_model_with_a_fixed_input_shape_is_refused_at_load(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = make_tiny_model(tmp_path / "fixed.onnx")
    proto = onnx.load(str(model))
    for dim, size in zip(proto.graph.input[0].type.tensor_type.shape.dim, (1, 3, 256, 456)):
        dim.ClearField("dim_param")
        dim.dim_value = size
    onnx.save(proto, str(model))
    problem = (f"Error: {model}: input 'data' has a fixed size 256 x 456; posecli needs a model with free height "
               "and width (export it with dynamic axes)\n")
    a = photo(tmp_path / "a.jpg")
    r = run("image", a, "--model", model, "--device", "cpu")
    assert r.exit_code == 1 and r.stderr == problem
    r = run("models", "info", model)
    assert r.exit_code == 1 and r.stderr == problem


_RECORD = {"skeleton": "coco18", "input": {"name": "data", "size_hw": [256, 456]},
           "outputs": {"heatmaps": "heatmaps", "pafs": "pafs"}}


@pytest.mark.slow
@pytest.mark.parametrize("content, problem", [
    (bytes(range(256)) * 8, "metadata is not UTF-8 text (not a posecli JSON record)"),
    ("[" * 100_000, "metadata is not valid JSON (nested too deeply)"),
    ({**_RECORD, "skeleton": ["coco18"]}, "malformed skeleton record ('list' object has no attribute 'get')"),
    ({**_RECORD, "skeleton": {"name": "x", "parts": ["a", "b"], "limbs": [[0, 1]], "paf_channels": [[0, 1]],
                              "coco17": [0] * 16 + [9]}},
     "skeleton 'x': coco17 names a part that does not exist"),
    ({**_RECORD, "skeleton": {"name": "x", "parts": ["a", "b"], "limbs": [[0, 1]], "paf_channels": [[0, 1]],
                              "render_limbs": [3]}},
     "skeleton 'x': render_limbs names a limb that does not exist"),
    ({**_RECORD, "input": {"name": "data", "size_hw": [100000, 100000]}},
     "input size_hw must be two sizes from the stride to 8192, not [100000, 100000]"),
    ({**_RECORD, "input": {"name": "data", "size_hw": [256, 456], "mean": [0, "nan", 0]}},
     "input mean must be finite numbers"),
    ({**_RECORD, "stride": 0}, "stride must be from 1 to 64, not 0"),
    ({**_RECORD, "keypoint_offset": [0, 100]}, "keypoint_offset must be two numbers within the stride (8) of 0, "
                                               "not [0.0, 100.0]"),
    ('{"skeleton": "coco18", "input": {"name": "data", "size_hw": [256, 456]}, "outputs": {"heatmaps": "heatmaps", '
     '"pafs": "pafs"}, "keypoint_offset": [NaN, Infinity]}',
     "keypoint_offset must be two numbers within the stride (8) of 0, not [nan, inf]"),
    ({**_RECORD, "keypoint_offset": [0.5]}, "keypoint_offset must be two numbers within the stride (8) of 0, not [0.5]"),
    ({**_RECORD, "keypoint_offset": "NaN"}, "keypoint_offset must be two numbers [x, y], not \"NaN\""),
    ({**_RECORD, "keypoint_offset": [True, 0]}, "keypoint_offset must be two numbers [x, y], not [true, 0]"),
    ({**_RECORD, "keypoint_offset": [0, "x"]}, "malformed posecli metadata (could not convert string to float: 'x')"),
    (" " * (2 << 20), "metadata file is over 1024 KB; not a posecli record"),
])
def test_a_garbage_sidecar_is_one_clear_line_before_any_work(content, problem, tmp_path):
    model = make_tiny_model(tmp_path / "bare.onnx", metadata=False)
    side = tmp_path / "bare.json"
    if isinstance(content, dict):
        content = json.dumps(content)
    side.write_bytes(content if isinstance(content, bytes) else content.encode())
    a = photo(tmp_path / "a.jpg")
    out = tmp_path / "o.json"
    r = run("image", a, "--model", model, "--device", "cpu", "--out", out)
    assert r.exit_code == 1 and r.stderr == f"Error: {side}: {problem}\n"
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_a_gpu_device_that_does_not_load_is_one_line(device, tmp_path):
    from posecli.network.session import cuda_usable

    if cuda_usable():
        pytest.skip("the GPU loads here")
    model = make_tiny_model(tmp_path / "m.onnx")
    proc = subprocess.run(posecli_cmd("image", photo(tmp_path / "a.jpg"), "--model", model, "--device", device),
                          capture_output=True, text=True, env=subprocess_env(), check=False, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: --device {device}: ") and proc.stderr.count("\n") == 1, proc.stderr
