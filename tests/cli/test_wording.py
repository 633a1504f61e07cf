"""The CLI words library errors with flags; the library names Python parameters."""

from __future__ import annotations

import pytest

from posecli.cli.wording import PARAM_FLAGS, as_flags, error_text
from posecli.errors import InputError, OutputError, PoseError
from posecli.formats.writers import ResultWriter

from tests.helpers import write_video


@pytest.mark.parametrize("text, worded", [
    ("device='cuda': CUDA did not load; use device='cpu' or device='auto'",
     "--device cuda: CUDA did not load; use --device cpu or --device auto"),
    ("fmt='openpose' with several frames needs out=DIRECTORY",
     "--format openpose with several frames needs --out DIRECTORY"),
    ("the loss diverged at step 3 (nan); try lr=4e-06", "the loss diverged at step 3 (nan); try --lr 4e-06"),
    ('batch_size="8" is too big', "--batch-size 8 is too big"),
    # not parameters: other names, attribute access, words that end in a parameter's name
    ("grid=3, model.out=2, size_hw=(1, 2), --out x", "grid=3, model.out=2, size_hw=(1, 2), --out x"),
])
def test_parameters_become_flags(text, worded):
    assert as_flags(text) == worded


def test_every_flag_in_the_table_is_a_real_option():
    from posecli.cli import main

    options = {opt for cmd in main.commands.values() for p in cmd.params for opt in p.opts}
    for sub in ("models",):
        group = main.commands[sub]
        options |= {opt for cmd in group.commands.values() for p in cmd.params for opt in p.opts}
    assert set(PARAM_FLAGS.values()) <= options, set(PARAM_FLAGS.values()) - options


def test_the_file_name_is_never_rewritten():
    err = OutputError("give out=DIRECTORY", path="/tmp/device='cuda'/a.json")
    assert error_text(err) == "/tmp/device='cuda'/a.json: give --out DIRECTORY"
    assert error_text(InputError("no people")) == "no people"
    assert error_text(ValueError("out=3")) == "out=3"  # not a library error: as it is


def test_library_messages_name_parameters_not_flags(tmp_path, tiny_model):
    from posecli.inference.estimator import PoseEstimator
    from posecli.video.run import VideoOptions, VideoRun

    with pytest.raises(PoseError, match=r"^fmt='openpose' with several frames needs out=DIRECTORY$") as err:
        ResultWriter("openpose", None, per_file_dir=True)
    assert err.value.param == "out"
    clip = write_video(tmp_path / "clip.mp4", 3)
    est = PoseEstimator(model=tiny_model, device="cpu")
    with pytest.raises(OutputError, match=r"^fmt='openpose' writes one file per frame: give out=DIRECTORY$"):
        VideoRun(est, clip, None, options=VideoOptions(fmt="openpose"))
