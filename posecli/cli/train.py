"""``posecli train`` and ``posecli export``: the optional training extra (PyTorch).

torch is imported inside the command functions, so ``posecli --help`` works without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import PoseError
from .common import FiniteFloat, fail, progress_bar, say


def _size(value: str | None) -> tuple[int, int] | None:
    """``HxW`` (or one number for a square) -> (H, W), multiples of 8."""
    if value is None:
        return None
    try:
        parts = [int(v) for v in value.lower().split("x")]
    except ValueError:
        raise click.BadParameter(f"'{value}' is not HxW, e.g. 256x256") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8 or any(p % 8 for p in parts):
        raise click.BadParameter(f"'{value}': height and width must be positive multiples of 8")
    return parts[0], parts[1]


@click.command("train", epilog="""\b
Examples:
  posecli train --annotations person_keypoints_train2017.json --images train2017/ --epochs 1
  posecli train --annotations A.json --images DIR --steps 300 --size 256 --out runs/ft
  posecli train --annotations A.json --images DIR --arch openpose --init scratch --steps 1000
  posecli train --annotations A.json --images DIR --resume runs/ft/last.pt --steps 600
""")
@click.option("--annotations", "-a", required=True, type=click.Path(path_type=Path),
              help="COCO-format keypoint annotations (JSON).")
@click.option("--images", "-i", required=True, type=click.Path(path_type=Path), help="Folder of the images.")
@click.option("--init", type=click.Choice(["default", "scratch"]), default="default", show_default=True,
              help="default: start from the default model's weights; scratch: random weights.")
@click.option("--arch", type=click.Choice(["lightweight", "openpose"]), default="lightweight", show_default=True,
              help="lightweight: the default model's network; openpose: the multi-stage design of the paper.")
@click.option("--weights", default=None, metavar="NAME|PATH",
              help="Pretrained model for --init default (ONNX in the store or a path, or an OpenVINO .xml).")
@click.option("--paf-stages", type=click.IntRange(1), default=None, help="--arch openpose: PAF stages T_P [default: 2].")
@click.option("--cm-stages", type=click.IntRange(1), default=None,
              help="--arch openpose: confidence-map stages T_C [default: 1].")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Passes over the data.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Optimiser steps in all (with --epochs: whichever comes first) [default: one epoch].")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--lr", type=FiniteFloat(min=1e-12, max=10.0), default=4e-5, show_default=True,
              help="Adam learning rate.")
@click.option("--size", "size", default="256x256", show_default=True, metavar="HxW",
              help="Training crop size (multiples of 8).")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--no-augment", is_flag=True, help="Whole images, no random scale/rotation/flip/colour.")
@click.option("--checkpoint-every", type=click.IntRange(0), default=100, show_default=True,
              help="Write <out>/last.pt every N steps (and at the end).")
@click.option("--val-annotations", type=click.Path(path_type=Path), default=None,
              help="Validation annotations: report COCO AP as `posecli eval` computes it.")
@click.option("--val-images", type=click.Path(path_type=Path), default=None,
              help="Validation images [default: --images].")
@click.option("--val-every", type=click.IntRange(1), default=1, show_default=True, help="Validate every N epochs.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True,
              help="Folder for checkpoints.")
@click.option("--resume", type=click.Path(path_type=Path), default=None, metavar="CKPT",
              help="Continue from a checkpoint (network, optimiser, step count, loss history).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch [default: all].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no summary.")
def train_command(annotations, images, init, arch, weights, paf_stages, cm_stages, epochs, steps,
                  batch_size, lr, size, workers, no_augment, checkpoint_every, val_annotations,
                  val_images, val_every, out_dir, resume, seed, device, threads, quiet):
    """Train or fine-tune a pose network with the OpenPose objective (needs posecli[train])."""
    input_hw = _size(size)
    arch_options = _arch_options(arch, paf_stages, cm_stages)
    try:
        from ..train.dataset import AugmentConfig
        from ..train.loop import TrainConfig, train

        config = TrainConfig(
            annotations=annotations, images=images, out_dir=out_dir, arch=arch, init=init,
            weights=weights, arch_options=arch_options, epochs=epochs, steps=steps,
            batch_size=batch_size, lr=lr, input_hw=input_hw, workers=workers, seed=seed,
            checkpoint_every=checkpoint_every,
            validate_every=val_every if val_annotations else None,
            val_annotations=val_annotations, val_images=val_images, device=device, threads=threads,
            augment=AugmentConfig(enabled=not no_augment),
        )
        progress = _StepBar(quiet)
        try:
            result = train(config, resume=resume, progress=progress)
        finally:
            progress.close()
    except PoseError as exc:
        raise fail(exc) from None
    if result.losses:
        first, last = result.losses[0], result.losses[-1]
        say(f"step {result.step}, epoch {result.epoch}: loss {first:.2f} (first step) -> {last:.2f} (last step)",
            quiet=quiet)
    for step, ap in result.validation:
        say(f"validation AP at step {step}: " + ("n/a (posecli eval not available)" if ap is None else f"{ap:.3f}"),
            quiet=quiet)
    say(f"checkpoint: {result.checkpoint}", quiet=quiet)


def _arch_options(arch: str, paf_stages: int | None, cm_stages: int | None) -> dict:
    """The network's stage counts (``--arch openpose`` only)."""
    if arch != "openpose":
        if paf_stages is not None or cm_stages is not None:
            raise click.UsageError("--paf-stages and --cm-stages are for --arch openpose")
        return {}
    options = {"paf_stages": paf_stages, "cm_stages": cm_stages}
    return {k: v for k, v in options.items() if v is not None}


class _StepBar:
    """The training progress bar, made at the first step (it knows where a resumed run starts)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None

    def __call__(self, step: int, total: int, loss: float, epoch: int) -> None:
        if self.bar is None:
            self.bar = progress_bar(total, self.quiet, desc="train", unit="step", initial=step - 1)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.2f}", epoch=epoch)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command("export", epilog="""\b
Examples:
  posecli export runs/train/last.pt --out finetuned.onnx
  posecli image photo.jpg --model finetuned.onnx
""")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", "-o", "out", required=True, type=click.Path(path_type=Path), help="ONNX file to write.")
@click.option("--name", default=None, help="Model name in the metadata [default: the file name].")
@click.option("--size", default=None, metavar="HxW",
              help="Native input size in the metadata [default: the base model's, or the training size].")
@click.option("--quiet", "-q", is_flag=True, help="Say nothing on success.")
def export_command(checkpoint, out, name, size, quiet):
    """Export a training checkpoint to ONNX with posecli metadata (needs posecli[train])."""
    size_hw = _size(size)
    try:
        from ..train.export import export_checkpoint

        info = export_checkpoint(checkpoint, out, name=name, size_hw=size_hw)
    except PoseError as exc:
        raise fail(exc) from None
    say(f"exported {info.name} ({info.size_hw[0]}x{info.size_hw[1]}, {info.skeleton.name}): {out}", quiet=quiet)
