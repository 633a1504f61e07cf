"""posecli.batch.prefetch: photos decoded ahead give the same results, in order, errors where they were."""

from __future__ import annotations

import json
import shutil

import pytest

from posecli.batch.local import plan_batch, run_job
from posecli.batch.prefetch import Prefetch
from posecli.errors import InputError
from posecli.inference.estimator import PoseEstimator

from tests.helpers import run, truncated_copy, write_video


@pytest.fixture
def folder(tmp_path, mini_set):
    """The four COCO photos, a truncated JPEG between them, and a short clip."""
    root = tmp_path / "in"
    root.mkdir()
    photos = mini_set["images"]
    for i, p in enumerate(photos):
        shutil.copy(p, root / f"{i}_{p.name}")
    truncated_copy(photos[0], root / "2_broken.jpg")
    write_video(root / "9_clip.mp4", 4)
    return root


def test_batch_with_prefetch_writes_what_one_at_a_time_writes(folder, tmp_path, default_model_int8):
    opts = ["-m", default_model_int8, "--device", "cpu", "--runtime", "onnxruntime", "--quiet"]
    res = run("batch", folder, "--out", tmp_path / "cli", *opts)
    assert res.exit_code == 1  # the broken photo
    assert res.stderr.count(": truncated JPEG") == 2 and res.stderr.count("Error:") == 1  # its line, the summary
    est = PoseEstimator(str(default_model_int8), device="cpu", runtime="onnxruntime", mode="balanced")  # batch's
    plan = plan_batch(folder, tmp_path / "alone")
    for job in plan.todo:
        if job.input.name == "2_broken.jpg":
            with pytest.raises(InputError):
                run_job(est, job)
            continue
        run_job(est, job)
    written = sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*.json"))
    assert written == sorted(p.relative_to(tmp_path / "alone") for p in (tmp_path / "alone").rglob("*.json"))
    assert len(written) == 5
    for rel in written:
        assert json.loads((tmp_path / "cli" / rel).read_text()) == json.loads((tmp_path / "alone" / rel).read_text())


def test_take_follows_the_plan_and_raises_each_photos_own_error(folder, tiny_model, tmp_path):
    est = PoseEstimator(str(tiny_model), device="cpu", height=64)
    jobs = plan_batch(folder, tmp_path / "out").todo
    with Prefetch(est, jobs, depth=1) as ahead:
        for job in jobs:
            if job.input.name == "2_broken.jpg":
                with pytest.raises(InputError, match="truncated JPEG"):
                    ahead.take(job)
            elif job.kind == "video":
                assert ahead.take(job) is None
            else:
                decoded = ahead.take(job)
                assert decoded.image.ndim == 3
    with Prefetch(est, jobs) as ahead, pytest.raises(RuntimeError, match="take jobs in order"):
        ahead.take(jobs[1])


def test_closing_early_stops_the_thread(folder, tiny_model, tmp_path):
    est = PoseEstimator(str(tiny_model), device="cpu", height=64)
    jobs = plan_batch(folder, tmp_path / "out").todo
    ahead = Prefetch(est, jobs, depth=1).start()
    ahead.take(jobs[0])
    ahead.close()
    ahead.close()  # twice is fine
    assert not ahead._thread.is_alive()
