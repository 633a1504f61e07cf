"""The CLI contract: help with examples, exit codes, one-line errors, outputs."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from posecli.cli import main

from tests.helpers import make_tiny_model


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _write_photo(path, size=(120, 160)):
    import cv2
    import numpy as np

    img = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    return path


@pytest.mark.parametrize("command", [[], ["image"], ["models"], ["models", "import"], ["models", "list"],
                                     ["models", "info"]])
def test_every_help_shows_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output and "posecli" in result.output


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "posecli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "posecli" in proc.stdout


def test_json_on_stdout_by_default(tiny_model, tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    result = run("image", photo, "--model", tiny_model)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == "posecli/1" and doc["complete"] is True
    assert doc["images"][0]["width"] == 160 and doc["images"][0]["height"] == 120


def test_missing_photo_is_one_line_exit_1_and_no_output_file(tiny_model, tmp_path):
    out = tmp_path / "out.json"
    result = run("image", tmp_path / "nope.jpg", "--model", tiny_model, "--out", out)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.jpg'}: no such file"
    assert not out.exists()


def test_non_image_file_is_reported_and_good_photos_still_written(tiny_model, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg at all")
    good = _write_photo(tmp_path / "good.jpg")
    out = tmp_path / "out.json"
    result = run("image", bad, good, "--model", tiny_model, "--out", out)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"Error: {bad}: not a readable image" in result.stderr
    doc = json.loads(out.read_text())
    assert [im["file"] for im in doc["images"]] == [str(good)]


def test_model_that_does_not_exist(tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    result = run("image", photo, "--model", tmp_path / "missing.onnx")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'missing.onnx'}: model file does not exist"


def test_model_that_is_not_onnx(tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"\x00garbage" * 10)
    result = run("image", photo, "--model", fake)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {fake}: ") and "ONNX" in result.stderr


def test_model_with_wrong_outputs(tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "wrong.onnx", heatmap_channels=10)
    result = run("image", photo, "--model", model)
    assert result.exit_code == 1
    assert "has 10 channels" in result.stderr and str(model) in result.stderr


def test_model_without_metadata_needs_a_profile(tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "bare.onnx", metadata=False)
    result = run("image", photo, "--model", model)
    assert result.exit_code == 1 and "--profile" in result.stderr
    result = run("image", photo, "--model", model, "--profile", "coco18")
    assert result.exit_code == 0, result.output


def test_body25_profile_reads_a_single_concatenated_output(tmp_path):
    """CMU's BODY_25 export has one output: 26 heatmaps then 52 PAFs."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    photo = _write_photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "b25.onnx", metadata=False, heatmap_channels=26, paf_channels=52)
    proto = onnx.load(str(model))
    proto.graph.node.append(helper.make_node("Concat", ["heatmaps", "pafs"], ["net_output"], axis=1))
    del proto.graph.output[:]
    proto.graph.output.append(helper.make_tensor_value_info("net_output", onnx.TensorProto.FLOAT, ["N", 78, "h", "w"]))
    onnx.save(proto, str(model))
    result = run("image", photo, "--model", model, "--profile", "body25")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["skeleton"]["name"] == "body25" and len(doc["skeleton"]["keypoints"]) == 25


def test_usage_mistakes_exit_2(tiny_model, tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    assert run("image", photo, "--format", "xml").exit_code == 2
    assert run("image").exit_code == 2
    assert run("image", photo, "--model", tiny_model, "-P", "no_such_setting=1").exit_code == 2
    assert run("image", photo, "--model", tiny_model, "--scales", "1,abc").exit_code == 2


def test_openpose_directory_and_render(tiny_model, tmp_path):
    a = _write_photo(tmp_path / "a b.jpg")
    b = _write_photo(tmp_path / "ü.png")
    out = tmp_path / "poses"
    renders = tmp_path / "renders"
    result = run("image", a, b, "--model", tiny_model, "--format", "openpose", "--out", out, "--render", renders)
    assert result.exit_code == 0, result.output
    for stem in ("a b", "ü"):
        doc = json.loads((out / f"{stem}_keypoints.json").read_text())
        assert doc["version"] == 1.3 and isinstance(doc["people"], list)
        assert (renders / f"{stem}_rendered.jpg").is_file()


def test_unwritable_output_directory_fails_before_work(tiny_model, tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    result = run("image", photo, "--model", tiny_model, "--out", tmp_path / "missing" / "x.json")
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_device_cuda_fails_clearly_without_a_gpu(tiny_model, tmp_path):
    from posecli.network.session import PoseModel

    try:
        PoseModel.load(tiny_model, device="cuda")
        pytest.skip("CUDA works on this machine")
    except Exception:
        pass
    photo = _write_photo(tmp_path / "a.jpg")
    result = run("image", photo, "--model", tiny_model, "--device", "cuda")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --device cuda:") and len(result.stderr.strip().splitlines()) == 1


def test_verbose_names_the_provider(tiny_model, tmp_path):
    photo = _write_photo(tmp_path / "a.jpg")
    result = run("image", photo, "--model", tiny_model, "--verbose", "--device", "cpu")
    assert result.exit_code == 0
    assert "provider: CPUExecutionProvider" in result.stderr


def test_models_list_and_info(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("POSECLI_MODELS", str(tmp_path / "store"))
    result = run("models", "list")
    assert result.exit_code == 0 and "no models yet" in result.output
    (tmp_path / "store").mkdir()
    make_tiny_model(tmp_path / "store" / "tiny.onnx")
    result = run("models", "list")
    assert "tiny" in result.output and "fp32" in result.output
    result = run("models", "info", "tiny", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    desc = json.loads(result.output)
    assert desc["provider"] == "CPUExecutionProvider" and desc["skeleton"] == "coco18"
    result = run("models", "info", "nothere")
    assert result.exit_code == 1 and "not in the model store" in result.stderr


def test_the_library_never_imports_the_cli():
    """Layering: the CLI words library errors as flags; no library module knows about it."""
    import ast
    from pathlib import Path

    import posecli

    root = Path(posecli.__file__).parent
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] in ("cli", "__main__.py"):  # the entry points
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:  # resolve the relative import against the module's package
                    package = list(rel.parts[:-1])
                    package = package[: len(package) - (node.level - 1)]
                    target = ".".join(package + ([node.module] if node.module else []))
                    names = [a.name for a in node.names]
                    assert not (target == "" and "cli" in names), rel
                assert not target.split(".")[0] == "cli" and not target.startswith("posecli.cli"), (rel, target)


def test_public_api_table_matches_the_type_checking_imports():
    """``posecli.__all__`` is lazy; the TYPE_CHECKING imports (what editors follow) name the same
    modules, and every name really is defined there."""
    import ast
    import importlib
    from pathlib import Path

    import posecli

    text = Path(posecli.__file__).read_text()
    block = next(n for n in ast.parse(text).body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {a.name: node.module for node in block.body for a in node.names}
    assert seen == posecli._EXPORTS
    for name, module in posecli._EXPORTS.items():
        assert getattr(importlib.import_module(f"posecli.{module}"), name) is getattr(posecli, name)
    assert len(posecli.__all__) <= 35


# ---------------------------------------------------------------------------------------------
# Issue 19: every option checked at parse time (finite, in range, memory-bounded), exit 2
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, problem", [
    ("--scales", "nan", "scales must be numbers from 0.05 to 4.0"),
    ("--scales", "inf", "scales must be numbers from 0.05 to 4.0"),
    ("--scales", "1e9", "scales must be numbers from 0.05 to 4.0"),
    ("-P", "smooth_sigma=inf", "smooth_sigma must be a finite number, got inf"),
    ("-P", "smooth_sigma=1e9", "smooth_sigma must be between 0.0 and 50.0"),
    ("-P", "paf_samples=1000000000", "paf_samples must be between 0 and 1000"),
    ("-P", "upsample=100000", "upsample must be an integer from 1 to 16 or 'stride'"),
    ("-P", "nms_radius=100000", "nms_radius must be between 1 and 64"),
    ("-P", "refine_radius=100000", "refine_radius must be between 1 and 64"),
    ("-P", "peak_threshold=nan", "peak_threshold must be a finite number, got nan"),
    ("-P", "min_score=nan", "min_score must be a finite number, got nan"),
    ("-P", "paf_samples_gain=nan", "paf_samples_gain must be a finite number, got nan"),
    ("-P", "upsample_pafs=banana", "'upsample_pafs=banana': 'banana' is not true or false"),
])
def test_bad_option_values_are_usage_errors_before_any_work(option, value, problem, tmp_path):
    a = _write_photo(tmp_path / "a.jpg")
    out = tmp_path / "new" / "o.json"
    r = run("image", a, option, value, "--out", f"{tmp_path / 'new'}/", "--model", tmp_path / "missing.onnx")
    assert r.exit_code == 2, r.output
    assert problem in r.stderr and "Traceback" not in r.stderr
    assert not out.parent.exists()  # nothing made either


@pytest.mark.parametrize("option", ["--start", "--end"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e12"])
def test_video_times_must_be_finite_seconds(option, value, tmp_path):
    r = run("video", tmp_path / "clip.mp4", option, value, "--model", tmp_path / "missing.onnx")
    assert r.exit_code == 2 and f"Invalid value for '{option}'" in r.stderr


def test_settings_the_presets_use_are_accepted(tmp_path):
    tiny = make_tiny_model(tmp_path / "tiny.onnx")
    a = _write_photo(tmp_path / "a.jpg")
    for options in (["-P", "upsample=stride"], ["-P", "upsample_pafs=yes", "-P", "refine=centroid"],
                    ["--parser", "openpose", "-P", "paf_samples=0"]):
        r = run("image", a, "--model", tiny, "--device", "cpu", "--height", "64", *options)
        assert r.exit_code == 0, r.output
    r = run("image", a, "--model", tiny, "--height", "4096", "--scales", "1,2")
    assert r.exit_code == 2 and "--height 4096 times scale 2.0 is over 4096 pixels" in r.stderr


def test_render_extension_is_checked_before_the_model_loads(tmp_path):
    a = _write_photo(tmp_path / "a.jpg")
    r = run("image", a, "--render", tmp_path / "x.json", "--model", tmp_path / "missing.onnx")
    assert r.exit_code == 2 and "cannot write an image as '.json' (use .jpg or .png)" in r.stderr
