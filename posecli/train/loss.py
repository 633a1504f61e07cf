"""The OpenPose objective: masked L2 at the end of every stage, summed over the stages.

For one stage with prediction P and target G of shape (N, C, h, w) and mask M of shape
(N, 1, h, w): ``sum(M * (P - G)^2) / (2 N)``, i.e. half the squared error per image (the
normalisation of Lightweight OpenPose's training code, so its learning rates carry over).
"""

from __future__ import annotations

import torch

from .network import Stage


def masked_l2(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Half the masked squared error per image: (N, C, h, w) x2 and (N, 1, h, w) -> scalar."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    return ((pred - target) ** 2 * mask).sum() / (2 * pred.shape[0])


def openpose_loss(
    stages: list[Stage], heatmaps: torch.Tensor, pafs: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, list[float]]:
    """Total loss over all stages, and each stage's loss (heatmaps + PAFs) as floats."""
    total = heatmaps.new_zeros(())
    per_stage = []
    for hm, paf in stages:
        stage = heatmaps.new_zeros(())
        if hm is not None:
            stage = stage + masked_l2(hm, heatmaps, mask)
        if paf is not None:
            stage = stage + masked_l2(paf, pafs, mask)
        total = total + stage
        per_stage.append(float(stage.detach()))
    return total, per_stage
