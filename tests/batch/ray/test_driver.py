"""``--engine ray``: the local engine's results from a local Ray instance, cut videos joined
with consistent ids, a killed worker retried, and the message without ray.

One Ray instance (loopback only, 2 CPUs) serves the whole module; tests that need no Ray
(joining ranges, planning) run without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posecli.batch.local import plan_batch, run_job
from posecli.batch.ray.chunking import ChunkConfig, can_cut, plan_units, ranges
from posecli.batch.ray.driver import run_batch_ray
from posecli.cli import main
from posecli.errors import MissingExtraError, PoseError
from posecli.inference.estimator import PoseEstimator
from posecli.video.run import VideoOptions
from posecli.video.track import TrackerConfig

from tests.helpers import fast, photo_clip, truncated_copy, write_video

PAN_PHOTOS = ("000000197388.jpg", "000000196141.jpg")  # 5 and 4 people


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` (hidden ones too) by relative path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def pan_clip(path: Path, photos_dir: Path, n: int, size_wh=(320, 224), step: int = 12) -> Path:
    """A camera panning across two group photos side by side: people leave, others enter."""
    h = size_wh[1]
    tiles = []
    for name in PAN_PHOTOS:
        im = cv2.imread(str(photos_dir / name))
        tiles.append(cv2.resize(im, (int(im.shape[1] * h / im.shape[0]), h), interpolation=cv2.INTER_AREA))
    canvas = np.concatenate(tiles, axis=1)

    def crop(i):
        x = min(i * step, canvas.shape[1] - size_wh[0])
        return np.ascontiguousarray(canvas[:, x:x + size_wh[0]])

    return write_video(path, n, size_wh=size_wh, frame_fn=crop)


def local_engine(plan, estimator, video=VideoOptions()) -> list[tuple[Path, str]]:
    """Run ``plan`` as ``posecli batch`` does locally; the failures as it lists them."""
    from posecli.batch.local import describe_failure

    failed = []
    for job in plan.todo:
        try:
            run_job(estimator, job, video=video)
        except (PoseError, OSError, ValueError, RuntimeError) as exc:
            failed.append((job.input, describe_failure(exc, job.input)))
    return failed


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module: loopback only, 2 CPUs, small object store."""
    pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from posecli.batch.ray.driver import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray


# ---------------------------------------------------------------------------------------------
# Without Ray: ranges
# ---------------------------------------------------------------------------------------------
def test_ranges_cover_the_video_once_with_overlaps():
    cfg = ChunkConfig(frames=20, overlap=6)
    assert ranges(26, cfg) == [(0, 26, 0)]  # short: not cut
    rs = ranges(61, cfg)
    assert [(f, s) for f, s, _ in rs] == [(0, 16), (16, 32), (32, 48), (48, 61)]
    assert [w for _, _, w in rs] == [0, 6, 6, 6]
    with pytest.raises(ValueError):
        ChunkConfig(frames=10, overlap=11)


def test_only_plain_videos_are_cut(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    write_video(root / "long.mp4", 50)
    write_video(root / "short.mp4", 10)
    plan = plan_batch(root, tmp_path / "out")
    video = VideoOptions(tracker=TrackerConfig(max_age=3))  # overlap 5
    units = plan_units(plan, video, ChunkConfig(frames=20), token="t")
    assert [u.key for u in units] == ["long.mp4#0", "long.mp4#1", "long.mp4#2", "short.mp4"]
    assert [(u.first, u.stop, u.warm) for u in units[:3]] == [(0, 17, 0), (17, 34, 5), (34, None, 5)]
    assert all(u.part.name.startswith(".long.json.part") for u in units[:3])
    rendered = plan_batch(root, tmp_path / "out", render=True)
    assert not can_cut(rendered.todo[0], VideoOptions())  # an annotated video is sequential
    assert len(plan_units(rendered, VideoOptions(), ChunkConfig(20))) == 2
    assert not can_cut(plan.todo[0], VideoOptions(smooth=object()))  # so is smoothing


def test_without_ray_the_engine_says_what_to_install(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    root = tmp_path / "in"
    root.mkdir()
    write_video(root / "a.mp4", 3)
    with pytest.raises(MissingExtraError, match=r"pip install 'posecli\[ray\]'"):
        run_batch_ray(plan_batch(root, tmp_path / "out"), {"model": str(tiny_model)})
    r = invoke("batch", root, "--out", tmp_path / "out", "--engine", "ray", *fast(tiny_model))
    assert r.exit_code == 1
    assert ("Error: --engine ray needs the 'ray' package: pip install 'ray[data]>=2.9' or pip install 'posecli[ray]'"
            in r.stderr)
    assert not (tmp_path / "out" / "a.json").exists()


# ---------------------------------------------------------------------------------------------
# On a local Ray instance
# ---------------------------------------------------------------------------------------------
def test_ray_gives_the_local_results_and_joins_a_cut_video_with_the_same_ids(ray_local, tmp_path, mini_set,
                                                                            default_model):
    root = tmp_path / "in"
    root.mkdir()
    for photo in mini_set["images"]:
        shutil.copy(photo, root / photo.name)
    photo_clip(root / "clip.mp4", mini_set["dir"] / "000000000785.jpg", 5)
    pan_clip(root / "pan.mp4", mini_set["dir"], 60)
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    options = {"model": str(default_model), "device": "cpu", "height": 160}
    # Ranges of 20 frames warmed up on 12 (the tracker's max_age + 2).
    video, chunking = VideoOptions(tracker=TrackerConfig(max_age=10)), ChunkConfig(frames=20)

    local_plan = plan_batch(root, tmp_path / "local")
    local_failed = local_engine(local_plan, PoseEstimator(**options, threads=1), video)

    plan = plan_batch(root, tmp_path / "ray")
    units = plan_units(plan, video, chunking)
    assert [(u.first, u.stop, u.warm) for u in units if u.job.input.name == "pan.mp4"] == [
        (0, 20, 0), (20, 40, 12), (40, None, 12)]  # the pan is cut in 3 ranges
    seen = []
    res = run_batch_ray(plan, options, num_workers=2, video=video, chunking=chunking, on_result=seen.append)

    assert sorted(o.job.rel.as_posix() for o in seen) == sorted(j.rel.as_posix() for j in plan.todo)
    broken = (root / "broken.jpg", "not a readable image (corrupt or unsupported format)")
    assert res.failed == local_failed == [broken]
    assert res.processed == 6 and res.workers == 2
    ray_files, local_files = files(tmp_path / "ray"), files(tmp_path / "local")
    expected = [p.stem + ".json" for p in mini_set["images"]] + ["clip.json", "pan.json"]
    assert sorted(ray_files) == sorted(local_files) == sorted(expected)  # no part or temporary file left
    assert ray_files == local_files  # byte for byte: same frames, people and ids
    pan = json.loads(ray_files["pan.json"])
    ids = [[p["id"] for p in f["people"] if p["id"] is not None] for f in pan["frames"]]  # null: unconfirmed
    assert pan["frames_done"] == 60 and pan["complete"] is True
    assert max(max(i) for i in ids[40:] if i) > max(max(i) for i in ids[:20] if i)  # new people, last range

    (root / "broken.jpg").unlink()
    again = run_batch_ray(plan_batch(root, tmp_path / "ray"), options, video=video, chunking=chunking)
    assert (again.processed, again.skipped, again.failed) == (0, 6, [])  # finished inputs are skipped


def test_cli_engine_ray_reports_like_the_local_engine(ray_local, tmp_path, mini_set, tiny_model):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    shutil.copy(mini_set["images"][0], root / "a.jpg")
    write_video(root / "sub" / "clip.mp4", 6)
    (root / "sub" / "text.mp4").write_text("this is text, not a video\n" * 20)
    (root / "sub" / "zero.jpg").write_bytes(b"")
    truncated_copy(write_video(tmp_path / "full.avi", 30, size_wh=(160, 120)), root / "sub" / "cut.avi", 0.5)

    local = invoke("batch", root, "--out", tmp_path / "local", "-R", "-q", *fast(tiny_model))
    ray = invoke("batch", root, "--out", tmp_path / "ray", "-R", "-q", "--engine", "ray", "--workers", "2",
                 *fast(tiny_model))
    assert ray.exit_code == local.exit_code == 1
    assert ray.stderr[ray.stderr.index("Done:"):] == local.stderr[local.stderr.index("Done:"):]
    assert "Done: 3 processed, 1 stopped early, 2 failed:" in ray.stderr
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    r = invoke("batch", root, "--out", tmp_path / "x", "--workers", "2", *fast(tiny_model))
    assert r.exit_code == 2 and "--engine ray" in r.stderr


def test_a_killed_worker_has_its_inputs_retried_and_every_result_complete(ray_local, tmp_path, tiny_model):
    root = tmp_path / "in"
    root.mkdir()
    names = [f"v{i}.mp4" for i in range(8)]
    for name in names:
        write_video(root / name, 40, size_wh=(192, 128))
    options = {"model": str(tiny_model), "device": "cpu", "height": 64,
               "parser_options": {"peak_threshold": 0.99}}
    killed: list[int] = []
    seen: list[str] = []

    def kill_first_worker(outcome):
        seen.append(outcome.job.rel.as_posix())
        if not killed:
            killed.append(outcome.pid)
            os.kill(outcome.pid, signal.SIGKILL)  # the actor's own process, as it reported it

    plan = plan_batch(root, tmp_path / "out")
    res = run_batch_ray(plan, options, num_workers=2, chunking=None, on_result=kill_first_worker)
    assert killed and killed[0] != os.getpid()
    assert sorted(seen) == names  # each input reported once
    assert (res.processed, res.failed) == (8, [])
    out = files(tmp_path / "out")
    assert sorted(out) == [n.replace(".mp4", ".json") for n in names]  # nothing half-written or temporary
    for blob in out.values():
        doc = json.loads(blob)
        assert doc["complete"] is True and doc["frames_done"] == 40
