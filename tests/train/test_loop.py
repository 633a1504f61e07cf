"""Training end to end on the mini set: fine-tuning lowers the loss, resume, export, CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # small CPU work; extra threads only spin on a busy machine
pytest.importorskip("pycocotools")
pytest.importorskip("onnx")

from posecli.train.checkpoint import load_checkpoint, network_from_checkpoint  # noqa: E402
from posecli.train.dataset import AugmentConfig, CocoPoseDataset  # noqa: E402
from posecli.train.export import export_checkpoint  # noqa: E402
from posecli.train.loop import TrainConfig, initial_network, train  # noqa: E402
from posecli.train.loss import openpose_loss  # noqa: E402

TINY_OPENPOSE = dict(backbone_widths=(8, 8, 16), features=16, width=8, blocks=1, hidden=16)


def _fixed_batch_loss(net, config) -> float:
    """Loss of ``net`` on all mini-set images, whole and unaugmented (deterministic)."""
    ds = CocoPoseDataset(config.annotations, config.images, config.input_hw, augment=AugmentConfig(enabled=False))
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    net.eval()
    with torch.no_grad():
        loss, _ = openpose_loss(net(batch["image"]), batch["heatmaps"], batch["pafs"], batch["mask"])
    return float(loss)


@pytest.fixture(scope="module")
def finetuned(mini_set, default_model, tmp_path_factory):
    """Six steps of fine-tuning the default model on the 4 mini-set images at 96x128."""
    out = tmp_path_factory.mktemp("ft")
    config = TrainConfig(annotations=mini_set["annotations"], images=mini_set["dir"], out_dir=out,
                         weights=str(default_model), steps=6, batch_size=4, lr=1e-4, input_hw=(96, 128),
                         augment=AugmentConfig(enabled=False), checkpoint_every=0)
    before = _fixed_batch_loss(initial_network(config)[0], config)
    result = train(config)
    after = _fixed_batch_loss(network_from_checkpoint(load_checkpoint(result.checkpoint)), config)
    return {"config": config, "result": result, "before": before, "after": after}


def test_finetuning_lowers_the_loss(finetuned):
    result = finetuned["result"]
    assert result.step == 6 and len(result.losses) == 6
    assert all(np.isfinite(result.losses))
    assert finetuned["after"] < 0.9 * finetuned["before"]


def test_export_matches_the_torch_model_and_runs_in_posecli(finetuned, mini_set, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    from posecli.cli import main
    from posecli.network.session import PoseModel
    from posecli.train.network import InferenceWrapper

    out = tmp_path / "finetuned.onnx"
    info = export_checkpoint(finetuned["result"].checkpoint, out)
    assert info.size_hw == (256, 456) and info.skeleton.name == "coco18"
    assert info.keypoint_offset == (0.0, 0.32)  # the base model's: six steps keep its peaks where they were
    model = PoseModel.load(out, device="cpu")
    assert model.info.heatmaps.name == "heatmaps" and model.info.pafs.name == "pafs"

    net = network_from_checkpoint(load_checkpoint(finetuned["result"].checkpoint)).eval()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)  # not the export size
    with torch.no_grad():
        hm, paf = InferenceWrapper(net)(torch.from_numpy(x))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got_hm, got_paf = session.run(["heatmaps", "pafs"], {"data": x})
    np.testing.assert_allclose(got_hm, hm.numpy(), atol=1e-4)
    np.testing.assert_allclose(got_paf, paf.numpy(), atol=1e-4)

    result = CliRunner().invoke(main, ["image", str(mini_set["images"][0]), "--model", str(out)])
    assert result.exit_code == 0, result.output
    assert '"people"' in result.output


@pytest.mark.slow
def test_resume_continues_the_step_count_and_loss_history(mini_set, tmp_path):
    config = TrainConfig(annotations=mini_set["annotations"], images=mini_set["dir"], out_dir=tmp_path,
                         arch="openpose", init="scratch", arch_options=TINY_OPENPOSE, steps=2,
                         batch_size=2, lr=1e-3, input_hw=(64, 64), checkpoint_every=1)
    first = train(config)
    assert first.step == 2 and (tmp_path / "last.pt").is_file()
    config.steps = 3
    second = train(config, resume=first.checkpoint)
    assert second.step == 3
    assert second.losses[:2] == first.losses and len(second.losses) == 3
    state = load_checkpoint(second.checkpoint)
    assert state["step"] == 3 and state["optimizer"] is not None
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_validation_hook_runs_every_epoch(mini_set, tmp_path):
    seen = []
    config = TrainConfig(annotations=mini_set["annotations"], images=mini_set["dir"], out_dir=tmp_path,
                         arch="openpose", init="scratch", arch_options=TINY_OPENPOSE, epochs=2,
                         batch_size=4, input_hw=(64, 64), validate_every=1, checkpoint_every=0)
    result = train(config, validate_fn=lambda net, meta: seen.append(net.training) or 0.5)
    assert result.epoch == 2 and result.validation == [(1, 0.5), (2, 0.5)]
    assert seen == [False, False]


def test_cli_train_then_export(mini_set, tmp_path):
    from click.testing import CliRunner

    from posecli.cli.train import export_command, train_command

    runner = CliRunner()
    args = ["--annotations", str(mini_set["annotations"]), "--images", str(mini_set["dir"]),
            "--arch", "openpose", "--init", "scratch", "--paf-stages", "1", "--cm-stages", "1",
            "--steps", "1", "--batch-size", "2", "--size", "64", "--out", str(tmp_path), "--quiet"]
    result = runner.invoke(train_command, args)
    assert result.exit_code == 0, result.output
    ckpt = tmp_path / "last.pt"
    result = runner.invoke(export_command, [str(ckpt), "--out", str(tmp_path / "m.onnx"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.onnx").is_file()


def test_cli_errors(mini_set, tmp_path):
    from click.testing import CliRunner

    from posecli.cli.train import export_command, train_command

    runner = CliRunner()
    result = runner.invoke(train_command, ["--annotations", str(tmp_path / "none.json"), "--images", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "annotation file does not exist" in result.output
    result = runner.invoke(train_command, ["--annotations", str(mini_set["annotations"]), "--images",
                                           str(mini_set["dir"]), "--arch", "openpose", "--init", "default"])
    assert result.exit_code == 1 and "--init default needs --arch lightweight" in result.output
    result = runner.invoke(train_command, ["--annotations", "a.json", "--images", ".", "--size", "100"])
    assert result.exit_code == 2
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    result = runner.invoke(export_command, [str(tmp_path / "bad.pt"), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "not a posecli checkpoint" in result.output


@pytest.mark.slow
def test_cli_help_does_not_import_torch():
    code = "import sys, posecli.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_without_torch_the_commands_say_what_to_install(mini_set):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from click.testing import CliRunner\n"
        "from posecli.cli.train import train_command, export_command\n"
        f"r = CliRunner().invoke(train_command, ['-a', {str(mini_set['annotations'])!r}, '-i', '.'])\n"
        "assert r.exit_code == 1, r.output\n"
        "assert \"pip install 'posecli[train]'\" in r.output, r.output\n"
        "r = CliRunner().invoke(export_command, ['x.pt', '--out', 'x.onnx'])\n"
        "assert r.exit_code == 1 and 'posecli[train]' in r.output, r.output\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_validation_goes_through_posecli_eval(mini_set, default_model):
    """The default weights in the training network score what ``posecli eval`` gives the imported
    model; an untrained network scores nothing."""
    from posecli.evaluate import coco_ap
    from posecli.train.loop import initial_network
    from posecli.train.validation import evaluate_network

    config = TrainConfig(annotations=mini_set["annotations"], images=mini_set["dir"], weights=str(default_model))
    net, meta = initial_network(config)
    ap = evaluate_network(net, meta, mini_set["annotations"], mini_set["dir"], height=256)
    reference = coco_ap(default_model, mini_set["annotations"], mini_set["dir"], height=256)
    assert ap > 0.5 and abs(ap - reference) < 0.02, (ap, reference)
    config = TrainConfig(annotations=mini_set["annotations"], images=mini_set["dir"], arch="openpose",
                         init="scratch", arch_options=TINY_OPENPOSE, input_hw=(64, 64))
    net, meta = initial_network(config)
    assert evaluate_network(net, {**meta, "arch": "openpose"}, mini_set["annotations"], mini_set["dir"], height=64) < 0.05
    assert net.training  # left as it was
