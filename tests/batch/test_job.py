"""BatchJob (``posecli batch``'s settings): engine rules named by parameter, checked when made."""

from __future__ import annotations

import pytest

from posecli.batch.job import BatchJob, run_batch
from posecli.errors import ConfigError
from posecli.inference.options import EstimatorOptions
from posecli.video.run import VideoOptions

from tests.helpers import photo


@pytest.mark.parametrize("settings, param", [
    ({"address": "auto"}, ("address", "workers")),
    ({"workers": 2}, ("address", "workers")),
    ({"engine": "ray", "maps_dir": "maps"}, "maps_dir"),
    ({"engine": "threads"}, "engine"),
])
def test_engine_settings_that_do_not_fit_are_refused(tmp_path, settings, param):
    with pytest.raises(ConfigError) as info:
        BatchJob(tmp_path, tmp_path / "out", **settings)
    assert info.value.param == param


def test_smoothing_without_tracking_is_the_video_rule():
    with pytest.raises(ConfigError, match="smooth=True follows tracked people"):
        BatchJob(".", "out", video=VideoOptions(track=False, smooth=True))


def test_a_folder_runs_locally_and_resumes(tmp_path, tiny_model):
    src = tmp_path / "in"
    src.mkdir()
    photo(src / "a.jpg")
    (src / "b.jpg").write_bytes(b"not a jpeg")
    estimator = EstimatorOptions(model=tiny_model, device="cpu", height=64, parser_options={"peak_threshold": 0.99})
    job = BatchJob(src, tmp_path / "out", estimator)
    first = run_batch(job)
    assert first.processed == 1 and [p.name for p, _ in first.failed] == ["b.jpg"]
    assert (tmp_path / "out" / "a.json").is_file()
    again = run_batch(job)
    assert again.processed == 0 and len(again.plan.done) == 1
