"""``posecli video --mode fastest``: the default for cameras and streams, files keep ``fast``,
``--mode`` overrides, ``--verbose`` counts frames by how the network ran; on a real clip it
agrees with ``fast`` (slow)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from posecli.cli import main

from tests.helpers import MjpegCamera, fast, photo_clip, write_video

COUNTS = re.compile(r"network on the whole frame: (\d+) frames, on crops: (\d+), not at all: (\d+)")


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _counts(output: str) -> tuple[int, int, int] | None:
    m = COUNTS.search(output)
    return None if m is None else tuple(int(g) for g in m.groups())


def test_a_camera_runs_fastest_by_default_and_verbose_counts_its_frames(tmp_path, tiny_model):
    out = tmp_path / "cam.json"
    with MjpegCamera(fps=30) as cam:
        r = _run("video", cam.url, "--max-frames", "12", "-v", "--out", out, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "mode fastest" in r.output
    whole, crops, none = _counts(r.output)
    assert whole >= 1 and whole + crops + none == 12 == len(json.loads(out.read_text())["frames"])


def test_mode_still_overrides_the_live_default(tmp_path, tiny_model):
    with MjpegCamera(fps=30) as cam:
        r = _run("video", cam.url, "--max-frames", "4", "-v", "--mode", "fast", "--out", tmp_path / "c.json",
                 *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "mode fast:" in r.output and _counts(r.output) is None


def test_files_keep_fast_and_take_fastest_when_asked(tmp_path, tiny_model):
    clip = write_video(tmp_path / "clip.avi", 20, size_wh=(160, 120), fps=50.0)  # key_frames before key_s
    r = _run("video", clip, "-v", "-q", "--out", tmp_path / "a.json", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "mode fast:" in r.output and _counts(r.output) is None
    r = _run("video", clip, "-v", "-q", "--mode", "fastest", "--max-frames", "17", "--out", tmp_path / "b.json",
             *fast(tiny_model))
    assert r.exit_code == 0, r.output
    # the first frame and every 5th after it (key_frames) run on the whole frame; counted as written
    assert _counts(r.output) == (4, 0, 13)
    assert json.loads((tmp_path / "b.json").read_text())["frames_done"] == 17


def test_help_says_the_live_default():
    r = _run("video", "--help")
    assert "fastest by default for cameras and streams" in " ".join(r.output.split())


@pytest.mark.slow
def test_fastest_agrees_with_fast_on_a_real_clip(tmp_path, default_model, mini_set):
    from posecli.formats.readers import load_posecli_json
    from posecli.video.agreement import agreement

    clip = photo_clip(tmp_path / "clip.avi", mini_set["images"][0], 40, size_wh=(640, 360))
    people = {}
    for mode in ("fast", "fastest"):
        out = tmp_path / f"{mode}.json"
        r = _run("video", clip, "--mode", mode, "-q", "--out", out, "-m", default_model, "--device", "cpu")
        assert r.exit_code == 0, r.output
        people[mode] = [f.people for f in load_posecli_json(out)]
    assert len(people["fast"]) == len(people["fastest"]) == 40
    assert sum(map(len, people["fast"])) > 0
    assert agreement(people["fastest"], people["fast"]) >= 0.8


def test_write_maps_with_fastest_is_a_usage_error_and_live_maps_run_fast(tmp_path, tiny_model):
    clip = write_video(tmp_path / "clip.avi", 4, size_wh=(160, 120))
    r = _run("video", clip, "--mode", "fastest", "--write-maps", tmp_path / "maps", "--out", tmp_path / "a.json",
             *fast(tiny_model))
    assert r.exit_code == 2 and "--write-maps" in r.output and "--mode fast" in r.output
    assert not (tmp_path / "maps").exists() and not (tmp_path / "a.json").exists()
    with MjpegCamera(fps=30) as cam:
        r = _run("video", cam.url, "--max-frames", "3", "-v", "--write-maps", tmp_path / "m2", "--out",
                 tmp_path / "c.json", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "mode fast:" in r.output and len(list((tmp_path / "m2").glob("*.npz"))) == 3


@pytest.mark.parametrize("extra", [["--track", "offline", "--smooth"], ["--follow", "largest"], ["--no-track"],
                                   ["--step", "3"], ["--batch-size", "4"], ["--format", "csv"],
                                   ["--realtime"], ["--zoom", "--scales", "1,0.75"]])
def test_fastest_goes_with_the_other_video_options(tmp_path, tiny_model, extra):
    clip = write_video(tmp_path / "clip.avi", 12, size_wh=(160, 120), fps=50.0)
    out = tmp_path / ("out.csv" if "csv" in extra else "out.json")
    r = _run("video", clip, "--mode", "fastest", "-v", "-q", "--out", out, *extra, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    whole, crops, none = _counts(r.output)
    assert whole >= 1 and out.stat().st_size > 0
    if "--realtime" not in extra:
        assert whole + crops + none == (4 if "--step" in extra else 12)
