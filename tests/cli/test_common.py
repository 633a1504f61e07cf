"""The one KEY=VALUE parser of -P and -T: each value converted to its field's type."""

from __future__ import annotations

import click
import pytest

from posecli.cli.common import parse_key_values
from posecli.parser import ParserConfig
from posecli.video.track import TrackerConfig


def test_values_take_their_fields_types():
    got = parse_key_values(("min_parts=3", "upsample_pafs=yes", "peak-threshold=0.2", "upsample=stride"),
                           ParserConfig, "-P")
    assert got == {"min_parts": 3, "upsample_pafs": True, "peak_threshold": 0.2, "upsample": "stride"}
    assert parse_key_values(("max_age=none", "max_gap_s=2"), TrackerConfig, "-T") == {"max_age": None,
                                                                                      "max_gap_s": 2.0}
    assert parse_key_values(("max_age=5",), TrackerConfig, "-T") == {"max_age": 5}


@pytest.mark.parametrize("item, message", [
    ("bogus=1", "expected KEY=VALUE with KEY one of"),
    ("min_parts", "expected KEY=VALUE"),
    ("min_parts=2.5", "'2.5' is not an integer"),
    ("upsample_pafs=banana", "'banana' is not true or false"),
    ("upsample=big", "is not an integer or 'stride'"),
    ("min_score=high", "is not a number"),
])
def test_bad_pairs_are_usage_errors_naming_the_pair(item, message):
    with pytest.raises(click.BadParameter, match=message) as info:
        parse_key_values((item,), ParserConfig, "-P")
    assert item in info.value.message
