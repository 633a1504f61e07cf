"""PhotoJob (``posecli image``'s settings): outputs resolved and checked before any work."""

from __future__ import annotations

import pytest

from posecli.batch.photos import PhotoJob, run_photos
from posecli.errors import ConfigError, OutputConflict
from posecli.inference.options import EstimatorOptions

from tests.helpers import photo


def test_one_file_per_photo_in_a_directory_with_unique_names(tmp_path):
    a, b = photo(tmp_path / "x.jpg"), photo(tmp_path / "x.png", seed=1)
    job = PhotoJob((a, b), out=f"{tmp_path / 'out'}/", render=tmp_path / "drawn")
    assert job.out_is_dir and job.render_is_dir
    assert [r.name for r, _ in job.targets] == ["x.jpg.json", "x.png.json"]
    assert [d.name for _, d in job.targets] == ["x.jpg_rendered.jpg", "x.png_rendered.jpg"]


@pytest.mark.parametrize("settings, message", [
    ({"keep_alpha": True}, "keep_alpha=True is about the annotated image: add render"),
    ({"keep_alpha": True, "render": "drawn.jpg"}, "needs an image format with transparency"),
    ({"render": "drawn.json"}, "cannot write an image as '.json'"),
])
def test_settings_that_cannot_work_are_refused(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        PhotoJob((photo(tmp_path / "a.jpg"),), **settings)


def test_openpose_for_several_photos_needs_a_directory(tmp_path):
    photos = (photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg", seed=1))
    with pytest.raises(ConfigError, match="one file per photo") as info:
        PhotoJob(photos, fmt="openpose")
    assert info.value.param == "out"


def test_an_output_on_a_photo_is_refused(tmp_path):
    a = photo(tmp_path / "a.jpg")
    with pytest.raises(OutputConflict, match="render would overwrite it"):
        PhotoJob((a,), render=a)


def test_photos_run_with_one_result_and_failures_reported(tmp_path, tiny_model):
    good, bad = photo(tmp_path / "a.jpg"), tmp_path / "b.jpg"
    bad.write_bytes(b"not a jpeg")
    seen = []

    class Report:
        def started(self, est): seen.append("started")
        def check(self): pass
        def done(self, p, people, seconds): seen.append(("done", p.name))
        def failed(self, p, error): seen.append(("failed", p.name))
        def progress(self): pass

    estimator = EstimatorOptions(model=tiny_model, device="cpu", height=64, parser_options={"peak_threshold": 0.99})
    out = tmp_path / "poses.json"
    assert run_photos(PhotoJob((good, bad), estimator, out=out), Report()) == 1
    assert seen == ["started", ("done", "a.jpg"), ("failed", "b.jpg")] and out.is_file()
