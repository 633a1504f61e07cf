"""VideoOptions and VideoJob: the rules that combine video settings, once, naming parameters."""

from __future__ import annotations

import math

import pytest

from posecli.errors import ConfigError, OutputConflict
from posecli.io.source_spec import parse_source
from posecli.video.job import VideoJob
from posecli.video.run import VideoOptions
from posecli.video.smooth import OneEuroConfig
from posecli.video.track import TrackerConfig

from tests.helpers import write_video


@pytest.mark.parametrize("settings, param", [
    ({"smooth": True, "track": False}, "smooth"),
    ({"follow": "largest", "track": False}, "follow"),
    ({"offline": True, "track": False}, ("track", "tracker")),
    ({"tracker": TrackerConfig(max_gap_s=2.0), "track": False}, ("track", "tracker")),
    ({"start": 5.0, "end": 5.0}, "end"),
    ({"duration": 0.0}, "duration"),
    ({"duration": -math.inf}, "duration"),
    ({"max_frames": 0}, "max_frames"),
    ({"follow": "tallest"}, "follow"),
])
def test_settings_that_cannot_work_together_are_refused(settings, param):
    with pytest.raises(ConfigError) as info:
        VideoOptions(**settings)
    assert info.value.param == param


def test_smooth_true_means_the_default_filter_and_follow_is_parsed():
    opts = VideoOptions(smooth=True, follow="Centre")
    assert opts.smooth == OneEuroConfig() and opts.follow == "center"
    assert VideoOptions(smooth=False).smooth is None


def test_looking_ahead_parts_and_rates_are_for_files():
    with pytest.raises(ConfigError, match="offline=True looks ahead"):
        VideoOptions(offline=True).check_source(parse_source("0"))
    with pytest.raises(ConfigError, match="a live source has none"):
        VideoOptions(start=2.0).check_source(parse_source("rtsp://127.0.0.1/cam"))
    with pytest.raises(ConfigError, match="fps=30 is for folders of frames"):
        VideoOptions(fps=30).check_source(parse_source("clip.mp4"))
    VideoOptions(offline=True, start=2.0).check_source(parse_source("clip.mp4"))


def test_the_job_resolves_its_outputs(tmp_path):
    clip = write_video(tmp_path / "walk.mp4", 2)
    (tmp_path / "poses").mkdir()
    job = VideoJob(str(clip), out=f"{tmp_path / 'poses'}/")
    assert job.out_path == tmp_path / "poses" / "walk.json" and job.spec.kind == "file"
    assert VideoJob(str(clip), maps_dir=tmp_path / "maps").estimator.keep_maps


def test_the_job_refuses_outputs_that_cannot_be(tmp_path):
    clip = write_video(tmp_path / "walk.mp4", 2)
    with pytest.raises(ConfigError, match="give out a folder, not a .json"):
        VideoJob(str(clip), options=VideoOptions(fmt="openpose"), out=tmp_path / "x.json")
    with pytest.raises(ConfigError, match="give out a folder"):
        VideoJob(str(clip), options=VideoOptions(fmt="openpose"))
    with pytest.raises(OutputConflict, match="out would overwrite it"):
        VideoJob(str(clip), out=clip)
    with pytest.raises(OutputConflict, match="both out and render"):
        VideoJob(str(clip), out=tmp_path / "same.mp4", render=tmp_path / "same.mp4")
