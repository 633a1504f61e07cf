"""``posecli batch``: mirrored results, resume, corrupt inputs, formats, nothing half-written."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from posecli.batch.local import plan_batch, run_job
from posecli.cli import main
from posecli.inference.estimator import PoseEstimator
from posecli.video.run import VideoOptions

from tests.helpers import (
    fast,
    photo,
    posecli_cmd,
    run,
    subprocess_env,
    truncated_copy,
    without_file_powers,
    write_video,
)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def folder(tmp_path, mini_set) -> Path:
    """photos/ with two photos, sub/ with a photo and a clip, deeper/ with one more, and a note."""
    root = tmp_path / "in"
    photos = mini_set["images"]
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(photos[0], root / "a.jpg")
    shutil.copy(photos[1], root / "b.jpg")
    shutil.copy(photos[2], root / "sub" / "c.jpg")
    write_video(root / "sub" / "clip.mp4", 6)
    shutil.copy(photos[3], root / "sub" / "deeper" / "d.jpg")
    (root / "notes.txt").write_text("not an input")
    return root


def results(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def test_results_mirror_the_folder_and_render(folder, tmp_path, tiny_model):
    out = tmp_path / "out"
    r = invoke("batch", folder, "--out", out, "--recursive", "--render", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert results(out) == [
        "a.json", "a_rendered.jpg", "b.json", "b_rendered.jpg", "sub/c.json", "sub/c_rendered.jpg",
        "sub/clip.json", "sub/clip_rendered.mp4", "sub/deeper/d.json", "sub/deeper/d_rendered.jpg"]
    assert "5 inputs, 5 to do, 1 other files skipped" in r.stderr
    assert "Done: 5 processed" in r.stderr
    video = json.loads((out / "sub" / "clip.json").read_text())
    assert video["complete"] is True and len(video["frames"]) == 6
    image = json.loads((out / "a.json").read_text())
    assert image["complete"] is True and len(image["images"]) == 1
    flat = invoke("batch", folder, "--out", tmp_path / "flat", "-q", *fast(tiny_model))
    assert flat.exit_code == 0 and results(tmp_path / "flat") == ["a.json", "b.json"]


def test_rerun_skips_complete_results_and_redoes_only_the_missing_one(folder, tmp_path, tiny_model):
    out = tmp_path / "out"
    assert invoke("batch", folder, "--out", out, "-R", "-q", *fast(tiny_model)).exit_code == 0
    before = {p: (out / p).stat().st_mtime_ns for p in results(out)}
    (out / "sub" / "c.json").unlink()
    r = invoke("batch", folder, "--out", out, "-R", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "1 to do, 4 already done" in r.stderr and "Done: 1 processed, 4 skipped" in r.stderr
    after = {p: (out / p).stat().st_mtime_ns for p in results(out)}
    assert after.keys() == before.keys()
    assert [p for p in after if after[p] != before[p]] == ["sub/c.json"]
    r = invoke("batch", folder, "--out", out, "-R", "--overwrite", "-q", *fast(tiny_model))
    assert r.exit_code == 0
    assert all((out / p).stat().st_mtime_ns != after[p] for p in after)


def test_corrupt_inputs_are_reported_listed_and_the_rest_processed(folder, tmp_path, tiny_model):
    sub = folder / "sub"
    (sub / "text.mp4").write_text("this is text, not a video\n" * 20)
    (sub / "zero.jpg").write_bytes(b"")
    full = write_video(tmp_path / "full.avi", 30, size_wh=(160, 120))
    truncated_copy(full, sub / "cut.avi", 0.5)
    out = tmp_path / "out"
    r = invoke("batch", folder, "--out", out, "-R", *fast(tiny_model))
    assert r.exit_code == 1
    assert f"Error: {sub / 'text.mp4'}: not a readable video" in r.stderr
    assert f"Error: {sub / 'zero.jpg'}: file is empty" in r.stderr
    assert f"Warning: {sub / 'cut.avi'}: stopped at frame" in r.stderr
    summary = r.stderr[r.stderr.index("Done:"):]
    assert summary.startswith("Done: 6 processed, 1 stopped early, 2 failed:")
    assert f"  {sub / 'text.mp4'}: " in summary and f"  {sub / 'zero.jpg'}: " in summary
    assert "sub/cut.json" in results(out) and "sub/text.json" not in results(out)
    assert "decode_error" in json.loads((out / "sub" / "cut.json").read_text())


def test_openpose_format_layout(folder, tmp_path, tiny_model):
    out = tmp_path / "op"
    r = invoke("batch", folder / "sub", "--out", out, "--format", "openpose", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert results(out) == ["c_keypoints.json"] + [f"clip/clip_{i:012d}_keypoints.json" for i in range(6)]
    again = invoke("batch", folder / "sub", "--out", out, "--format", "openpose", *fast(tiny_model))
    assert "0 to do, 2 already done" in again.stderr


def test_interrupted_job_leaves_no_result_and_no_temporary_files(folder, tmp_path, tiny_model):
    est = PoseEstimator(str(tiny_model), device="cpu", height=64, parser_options={"peak_threshold": 0.99})
    out = tmp_path / "out"
    for fmt in ("posecli", "openpose"):
        plan = plan_batch(folder, out, recursive=True, fmt=fmt, render=True)
        (job,) = [j for j in plan.todo if j.kind == "video"]
        seen = []

        def progress(n):
            seen.append(n)
            if len(seen) == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_job(est, job, video=VideoOptions(), progress=progress)
        assert not job.result.exists() and not job.render.exists()
        assert not [t for t in threading.enumerate() if t.name.startswith("posecli-")]  # workers stopped
        assert list((out / "sub").iterdir()) == []  # no temporary file or folder left
        done = run_job(est, job)
        assert done.frames == 6 and job.is_done()
        shutil.rmtree(out)


def test_plan_keeps_names_apart_and_never_lists_its_own_output(tmp_path, mini_set):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(mini_set["images"][0], root / "x.jpg")
    shutil.copy(mini_set["images"][1], root / "x.png")
    (root / "out").mkdir()
    (root / "out" / "x_rendered.jpg").write_bytes(b"old output")
    plan = plan_batch(root, root / "out", recursive=True, render=True)
    assert [j.result.name for j in plan.todo] == ["x.jpg.json", "x.png.json"]
    assert [j.render.name for j in plan.todo] == ["x.jpg_rendered.jpg", "x.png_rendered.jpg"]


def test_missing_folder_is_an_error(tmp_path, tiny_model):
    r = invoke("batch", tmp_path / "nope", "--out", tmp_path / "out", *fast(tiny_model))
    assert r.exit_code == 1 and "no such folder" in r.stderr


def test_real_model_batch_finds_people_in_photos_and_a_clip(tmp_path, default_model, mini_set):
    from tests.helpers import photo_clip

    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(mini_set["dir"] / "000000000785.jpg", root / "ski.jpg")
    photo_clip(root / "ski.mp4", mini_set["dir"] / "000000000785.jpg", 3)
    out = tmp_path / "out"
    r = invoke("batch", root, "--out", out, "--render", "-q", "-m", default_model, "--device", "cpu", "--height", "160")
    assert r.exit_code == 0, r.output
    assert results(out) == ["ski.jpg.json", "ski.jpg_rendered.jpg", "ski.mp4.json", "ski.mp4_rendered.mp4"]
    image = json.loads((out / "ski.jpg.json").read_text())["images"][0]
    assert any(p["score"] > 0.3 for p in image["people"])
    frames = json.loads((out / "ski.mp4.json").read_text())["frames"]
    # online ids: the track is confirmed in its third frame (min_hits 3), "id": null before
    assert len(frames) == 3 and [f["people"][0]["id"] for f in frames if f["people"]] == [None, None, 0]


# ---------------------------------------------------------------------------------------------
# Issue 19: outputs among the inputs, names that clash, entries that cannot be listed
# ---------------------------------------------------------------------------------------------
def test_out_as_the_input_folder_is_a_usage_error_and_touches_nothing(tmp_path, tiny_model):
    root = tmp_path / "s"
    root.mkdir()
    photo(root / "a.jpg", seed=1)
    mine = photo(root / "a_rendered.jpg", seed=2).read_bytes()
    r = run("batch", root, "--out", root, "--render", *fast(tiny_model))
    assert r.exit_code == 2
    assert f"Error: {root}: out is the input folder itself" in r.stderr
    assert (root / "a_rendered.jpg").read_bytes() == mine
    assert sorted(p.name for p in root.iterdir()) == ["a.jpg", "a_rendered.jpg"]


def test_result_names_never_clash_and_a_rerun_finds_them_done(tmp_path, tiny_model):
    root = tmp_path / "in"
    root.mkdir()
    for i, name in enumerate(("a.jpg", "a.png", "a.jpg.jpg")):
        photo(root / name, seed=i)
    out = tmp_path / "out"
    r = run("batch", root, "--out", out, "--render", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    files = {json.loads(p.read_text())["images"][0]["file"] for p in out.glob("*.json")}
    assert len(list(out.glob("*.json"))) == 3 and len(list(out.glob("*_rendered.jpg"))) == 3
    assert files == {str(root / n) for n in ("a.jpg", "a.png", "a.jpg.jpg")}
    again = run("batch", root, "--out", out, *fast(tiny_model))
    assert again.exit_code == 0 and "3 inputs, 0 to do, 3 already done" in again.stderr


def test_loops_links_and_long_names_are_their_own_failures(tmp_path, tiny_model):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    photo(root / "good.jpg")
    photo(root / "sub" / "deep.jpg", seed=1)
    (root / "loop.jpg").symlink_to("loop.jpg")  # a symbolic link loop, listed even without -R
    (root / "self").symlink_to(".")  # ln -s . self: -R would go round forever
    long = photo(root / f"{'n' * 245}.jpg", seed=2)  # its "_rendered.jpg" name is over 255 bytes
    out = tmp_path / "out"
    r = run("batch", root, "--out", out, "-R", "--render", "-q", *fast(tiny_model))
    assert r.exit_code == 1
    assert "Done: 2 processed, 3 failed:" in r.stderr
    assert f"  {root / 'loop.jpg'}: symbolic link loop\n" in r.stderr
    assert f"  {root / 'self'}: links back to a folder already listed (a loop); skipped\n" in r.stderr
    assert f"  {long}: its result name would be 258 bytes, over the limit of 255\n" in r.stderr
    assert (out / "good.json").exists() and (out / "sub" / "deep.json").exists()
    r = run("batch", root, "--out", tmp_path / "flat", *fast(tiny_model))  # without -R: the loop alone
    assert r.exit_code == 1 and "Done: 2 processed, 1 failed:" in r.stderr


def test_an_unreadable_subfolder_is_listed_and_the_rest_processed(tmp_path, tiny_model):
    prefix = without_file_powers()
    if prefix is None:
        pytest.skip("root without setpriv cannot make a folder unreadable to itself")
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    photo(root / "good.jpg")
    photo(root / "locked" / "hidden.jpg")
    (root / "locked").chmod(0)
    try:
        cmd = [*prefix, *posecli_cmd("batch", root, "--out", tmp_path / "out", "-R", "-q", *fast(tiny_model))]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), check=False, timeout=120)
    finally:
        (root / "locked").chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert f"  {root / 'locked'}: cannot list folder (Permission denied)\n" in proc.stderr
    assert "Done: 1 processed, 1 failed:" in proc.stderr and (tmp_path / "out" / "good.json").exists()


def test_an_unwritable_out_is_reported_before_any_work(tmp_path, tiny_model):
    root = tmp_path / "in"
    root.mkdir()
    for i in range(3):
        photo(root / f"p{i}.jpg", seed=i)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("batch", root, "--out", blocker / "out", *fast(tiny_model))
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1] == f"Error: {blocker / 'out'}: cannot create output directory (Not a directory)"
    assert "p0.jpg" not in r.stderr  # no input "failed" one by one
