"""Speed/accuracy modes: the ladder, explicit settings overriding it, each command's default."""

import json

import pytest
from click.testing import CliRunner

from posecli.cli import main
from posecli.errors import InputError
from posecli.inference.estimator import PoseEstimator
from posecli.inference.modes import MODES, get_mode, resolve
from posecli.network.session import PoseModel
from posecli.parser import get_preset


def test_the_ladder_adds_one_ingredient_per_rung():
    fast, balanced, accurate = MODES["fast"], MODES["balanced"], MODES["accurate"]
    assert (fast.zoom, fast.flip) == (False, False)
    assert (balanced.zoom, balanced.flip) == (True, False)
    assert (accurate.zoom, accurate.flip, accurate.scales) == (True, False, (1.0, 1.5))
    # the first pass keeps the model's height in every mode (large people prefer it)
    assert {m.height for m in MODES.values()} == {None}


def test_explicit_settings_override_the_mode():
    assert resolve("accurate", scales=[1]) == {"height": None, "scales": (1,), "flip": False, "zoom": True}
    assert resolve("accurate", flip=True)["flip"] is True
    assert resolve("fast", height=368, scales=[1, 1.5], zoom=True) == {
        "height": 368, "scales": (1, 1.5), "flip": False, "zoom": True}
    assert get_mode(None).name == "fast"  # the library's default: what it did before modes


def test_an_unknown_mode_is_an_input_error_naming_the_parameter():
    with pytest.raises(InputError, match="mode='turbo'"):
        get_mode("turbo")


def test_estimator_takes_the_mode_and_the_overrides(default_model):
    model = PoseModel.load(str(default_model), device="cpu", precision="fp32")
    est = PoseEstimator(model, mode="accurate")
    assert (est.mode, est.flip, est.zoom is not None, est.height, est.scales) == ("accurate", False, True, 256, (1.0, 1.5))
    est = PoseEstimator(model, mode="accurate", flip=False, zoom=False, height=320)
    assert (est.flip, est.zoom, est.height) == (False, None, 320)
    with pytest.raises(InputError, match="scales="):
        PoseEstimator(model, scales=(float("nan"),))
    with pytest.raises(InputError, match="scales="):
        PoseEstimator(model, scales=(1.0, float("inf")))


def test_every_mode_parses_with_the_same_settings(default_model):
    model = PoseModel.load(str(default_model), device="cpu", precision="fp32")
    configs = {m: PoseEstimator(model, mode=m).parser_config for m in MODES}
    assert len(set(configs.values())) == 1 and configs["accurate"].peak_threshold == 0.1
    # an explicit setting wins, and so does a named reference preset
    est = PoseEstimator(model, mode="accurate", parser_options={"peak_threshold": 0.2})
    assert est.parser_config.peak_threshold == 0.2
    assert PoseEstimator(model, mode="accurate", parser="lightweight").parser_config == get_preset("lightweight")


@pytest.mark.parametrize("command, default", [("image", "[default: accurate]"), ("eval", "[default: accurate]"),
                                              ("batch", "[default: balanced]"),
                                              ("video", "fast for files and folders")])
def test_each_command_says_its_default_mode_in_help(command, default):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert default in text
    assert "--no-flip" in text and "--no-zoom" in text


@pytest.mark.parametrize("args", [["--mode", "turbo"], ["--scales", "nan"], ["--scales", "1,inf"]])
def test_bad_mode_options_are_usage_errors(mini_set, args):
    photo = str(mini_set["images"][0])
    result = CliRunner().invoke(main, ["image", photo, *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_mode_fast_is_accurate_without_its_ingredients(mini_set, default_model, tmp_path):
    photo = str(mini_set["dir"] / "000000000785.jpg")
    outs = []
    for i, args in enumerate((["--mode", "fast"], ["--mode", "accurate", "--scales", "1", "--no-zoom",
                                                    "-P", "peak_threshold=0.1"])):
        out = tmp_path / f"{i}.json"
        result = CliRunner().invoke(main, ["image", photo, "--device", "cpu", "--precision", "fp32",
                                           "--out", str(out), *args])
        assert result.exit_code == 0, result.output
        outs.append(json.loads(out.read_text())["images"])
    assert outs[0] == outs[1]


def test_eval_out_keeps_every_detection_of_posecli_image(mini_set, default_model, tmp_path):
    """Same options, same default mode: `posecli eval --out` holds what `posecli image` gives."""
    common = ["--device", "cpu", "--precision", "fp32"]
    image_out, eval_out = tmp_path / "image.json", tmp_path / "eval.json"
    photos = [str(p) for p in mini_set["images"]]
    r1 = CliRunner().invoke(main, ["image", *photos, "--format", "coco", "--out", str(image_out), *common])
    assert r1.exit_code == 0, r1.output
    r2 = CliRunner().invoke(main, ["eval", "-a", str(mini_set["annotations"]), "-i", str(mini_set["dir"]),
                                   "-q", "--out", str(eval_out), *common])
    assert r2.exit_code == 0, r2.output

    def key(d):
        return d["image_id"], -d["score"], d["keypoints"]

    from_image = sorted(json.loads(image_out.read_text()), key=key)
    from_eval = sorted(json.loads(eval_out.read_text()), key=key)
    assert len(from_image) >= 10
    assert from_image == from_eval
