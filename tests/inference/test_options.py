"""EstimatorOptions: every estimator setting checked once, errors naming the parameter."""

from __future__ import annotations

import inspect
import math

import pytest

from posecli.errors import ConfigError
from posecli.inference.estimator import PoseEstimator
from posecli.inference.options import MAX_INPUT_HEIGHT, EstimatorOptions


@pytest.mark.parametrize("scales", [(), (math.nan,), (math.inf,), (0.01,), (1.0, 9.0), (-1.0,)])
def test_scales_outside_the_range_are_refused(scales):
    with pytest.raises(ConfigError, match="scales must be numbers") as info:
        EstimatorOptions(scales=scales)
    assert info.value.param == "scales"


def test_the_largest_scale_bounds_the_input_height():
    EstimatorOptions(height=2048, scales=(1.0, 2.0))
    with pytest.raises(ConfigError, match=f"height=4096 times scale 2.0 is over {MAX_INPUT_HEIGHT} pixels"):
        EstimatorOptions(height=4096, scales=(1, 2))


def test_parser_settings_are_checked_when_the_options_are_made():
    with pytest.raises(ConfigError, match="min_score must be a finite number") as info:
        EstimatorOptions(parser_options={"min_score": math.nan})
    assert info.value.param == "parser_options"
    with pytest.raises(ConfigError, match="unknown parser preset") as info:
        EstimatorOptions(parser="fastest-ever")
    assert info.value.param == "parser"
    assert EstimatorOptions(parser="openpose", parser_options={"min_parts": 3}).parser_config().min_parts == 3


def test_options_are_plain_values_that_the_estimator_takes():
    opts = EstimatorOptions(model="m.onnx", scales=[1, 0.5], parser_options={"min_parts": 3})
    assert opts.scales == (1.0, 0.5) and opts.parser_options == {"min_parts": 3}
    accepted = set(inspect.signature(PoseEstimator).parameters)
    assert set(opts.kwargs()) <= accepted


def test_options_build_the_estimator_they_describe(tiny_model):
    est = EstimatorOptions(model=tiny_model, device="cpu", height=64, scales=(1, 0.5), max_people=2).build()
    assert (est.height, est.scales, est.max_people) == (64, (1.0, 0.5), 2)
