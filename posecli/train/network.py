"""The networks in PyTorch: Lightweight OpenPose and the multi-stage OpenPose design.

Both take (N, 3, H, W) float32 BGR pixels 0-255 and normalise inside
(``x * input_scale + input_offset`` per channel), so an exported ONNX model takes raw
pixels like the imported default model. Both return one ``(heatmaps, pafs)`` pair per
stage, (N, K+1, H/8, W/8) and (N, 2L, H/8, W/8), with None where a stage does not predict
that kind of map; the last non-None of each is the network's output.

:class:`LightweightOpenPose` is the architecture of Open Model Zoo's
human-pose-estimation-0001, layer by layer as its IR has it (names in ``source``):
a MobileNet-v1 backbone with stride 8 (conv5_1 dilated by 2), a CPM block with ELUs, the
initial stage (three 3x3, then a 1x1 head per map kind), and refinement stages of five
residual blocks (1x1, 3x3, 3x3 dilated by 2). The IR's batch norms are folded into the
convolutions; ``bn=True`` puts them back as BatchNorm layers (training from scratch).

:class:`OpenPoseNet` is the design of Cao et al. (PAMI 2021): T_P PAF stages, each on the
backbone features and the previous PAFs, then T_C confidence-map stages on the features, the
last PAFs and the previous confidence maps. Each 7x7 convolution is three 3x3 ones whose
outputs are concatenated. The backbone is a small VGG-style stack so it trains on a CPU.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

Stage = tuple["torch.Tensor | None", "torch.Tensor | None"]

# (x - 128) / 256, CMU OpenPose's normalisation; the default model's weights bring their own.
DEFAULT_SCALE = 1.0 / 256.0
DEFAULT_OFFSET = -0.5


class ConvBlock(nn.Module):
    """Conv (+ BatchNorm) (+ activation). ``source``: the layer's name in the imported model."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                 groups: int = 1, bn: bool = False, act: str | None = "relu", source: str = ""):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, dilation, groups, bias=not bn)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.act = {"relu": nn.ReLU(inplace=True), "elu": nn.ELU(inplace=True),
                    "prelu": nn.PReLU(cout), None: None}[act]
        self.source = source

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


class _Normalise(nn.Module):
    """x * scale + offset per channel; the constants are buffers (saved, exported)."""

    def __init__(self, scale=DEFAULT_SCALE, offset=DEFAULT_OFFSET):
        super().__init__()
        self.register_buffer("scale", torch.full((1, 3, 1, 1), float(scale)))
        self.register_buffer("offset", torch.full((1, 3, 1, 1), float(offset)))

    def set(self, scale: Sequence[float], offset: Sequence[float]) -> None:
        self.scale.copy_(torch.as_tensor(scale, dtype=torch.float32).reshape(1, -1, 1, 1).expand(1, 3, 1, 1))
        self.offset.copy_(torch.as_tensor(offset, dtype=torch.float32).reshape(1, -1, 1, 1).expand(1, 3, 1, 1))

    def forward(self, x):
        return x * self.scale + self.offset


# -- Lightweight OpenPose ---------------------------------------------------------------------

# MobileNet-v1 layers: (name, in, out, stride, dilation) of each depthwise-separable pair.
_MOBILENET = (
    ("conv2_1", 32, 64, 1, 1), ("conv2_2", 64, 128, 2, 1),
    ("conv3_1", 128, 128, 1, 1), ("conv3_2", 128, 256, 2, 1),
    ("conv4_1", 256, 256, 1, 1), ("conv4_2", 256, 512, 1, 1),
    ("conv5_1", 512, 512, 1, 2), ("conv5_2", 512, 512, 1, 1), ("conv5_3", 512, 512, 1, 1),
    ("conv5_4", 512, 512, 1, 1), ("conv5_5", 512, 512, 1, 1),
)


class _Cpm(nn.Module):
    """512 -> 128 channels: align (1x1), a residual trunk of depthwise convs, all ELU; 3x3 ReLU."""

    def __init__(self, cin: int = 512, c: int = 128):
        super().__init__()
        self.align = ConvBlock(cin, c, 1, act="elu", source="conv4_3_CPM/al")
        self.trunk = nn.Sequential(
            ConvBlock(c, c, 1, act="elu", source="conv4_3_CPM/red"),
            ConvBlock(c, c, 3, groups=c, act="elu", source="conv4_3_CPM/dw1"),
            ConvBlock(c, c, 1, act="elu", source="conv4_3_CPM/dw1/1x1"),
            ConvBlock(c, c, 3, groups=c, act="elu", source="conv4_3_CPM/dw2"),
            ConvBlock(c, c, 1, act="elu", source="conv4_3_CPM/dw2/1x1"),
            ConvBlock(c, c, 3, groups=c, act="elu", source="conv4_3_CPM/dw3"),
            ConvBlock(c, c, 1, act="elu", source="conv4_3_CPM/inc"),
        )
        self.out = ConvBlock(c, c, 3, act="relu", source="conv4_4_CPM")

    def forward(self, x):
        x = self.align(x)
        return self.out(x + self.trunk(x))


class _InitialStage(nn.Module):
    """Three 3x3 convs, then a 1x1 512 + 1x1 head for PAFs (L1) and for heatmaps (L2)."""

    def __init__(self, c: int, n_heatmaps: int, n_pafs: int):
        super().__init__()
        self.trunk = nn.Sequential(*(ConvBlock(c, c, 3, source=f"conv5_{i}_CPM_L1") for i in (1, 2, 3)))
        self.pafs = nn.Sequential(ConvBlock(c, 512, 1, source="conv5_4_CPM_L1"),
                                  ConvBlock(512, n_pafs, 1, act=None, source="conv5_5_CPM_L1"))
        self.heatmaps = nn.Sequential(ConvBlock(c, 512, 1, source="conv5_4_CPM_L2"),
                                      ConvBlock(512, n_heatmaps, 1, act=None, source="conv5_5_CPM_L2"))

    def forward(self, x):
        t = self.trunk(x)
        return self.heatmaps(t), self.pafs(t)


class _RefinementBlock(nn.Module):
    """1x1, then 3x3 and 3x3 dilated by 2 (with batch norm), added back to the 1x1's output."""

    def __init__(self, cin: int, c: int, name: str, bn: bool):
        super().__init__()
        self.initial = ConvBlock(cin, c, 1, source=f"{name}/sq")
        self.trunk = nn.Sequential(ConvBlock(c, c, 3, bn=bn, source=f"{name}/3x3"),
                                   ConvBlock(c, c, 3, dilation=2, bn=bn, source=f"{name}/3x3/2"))

    def forward(self, x):
        x = self.initial(x)
        return x + self.trunk(x)


class _RefinementStage(nn.Module):
    """Input: cat(PAFs, heatmaps, features), as in the default model; five blocks, two heads."""

    def __init__(self, cin: int, c: int, n_heatmaps: int, n_pafs: int, index: int, bn: bool):
        super().__init__()
        s = f"stage{index}"
        self.trunk = nn.Sequential(*(
            _RefinementBlock(cin if i == 1 else c, c, f"Mconv{i}_{s}_L1", bn) for i in range(1, 6)
        ))
        self.pafs = nn.Sequential(ConvBlock(c, c, 1, source=f"Mconv6_{s}_L1"),
                                  ConvBlock(c, n_pafs, 1, act=None, source=f"Mconv7_{s}_L1"))
        self.heatmaps = nn.Sequential(ConvBlock(c, c, 1, source=f"Mconv6_{s}_L2"),
                                      ConvBlock(c, n_heatmaps, 1, act=None, source=f"Mconv7_{s}_L2"))

    def forward(self, features, heatmaps, pafs):
        t = self.trunk(torch.cat([pafs, heatmaps, features], dim=1))
        return self.heatmaps(t), self.pafs(t)


class LightweightOpenPose(nn.Module):
    """Open Model Zoo's human-pose-estimation-0001 (see the module docstring).

    ``refinement_stages``: how many refinement stages follow the initial one (default 1).
    """

    arch = "lightweight"

    def __init__(self, n_heatmaps: int = 19, n_pafs: int = 38, refinement_stages: int = 1,
                 bn: bool = False, channels: int = 128):
        super().__init__()
        self.config = {"n_heatmaps": n_heatmaps, "n_pafs": n_pafs,
                       "refinement_stages": refinement_stages, "bn": bn, "channels": channels}
        self.normalise = _Normalise()
        layers = [ConvBlock(3, 32, 3, stride=2, bn=bn, source="conv1")]
        for name, cin, cout, stride, dil in _MOBILENET:
            layers.append(ConvBlock(cin, cin, 3, stride, dil, groups=cin, bn=bn, source=f"{name}/dw"))
            layers.append(ConvBlock(cin, cout, 1, bn=bn, source=f"{name}/sep"))
        self.backbone = nn.Sequential(*layers)
        self.cpm = _Cpm(512, channels)
        self.initial = _InitialStage(channels, n_heatmaps, n_pafs)
        self.refinement = nn.ModuleList(
            _RefinementStage(channels + n_heatmaps + n_pafs, channels, n_heatmaps, n_pafs, i + 2, bn)
            for i in range(refinement_stages)
        )

    def forward(self, x) -> list[Stage]:
        features = self.cpm(self.backbone(self.normalise(x)))
        stages = [self.initial(features)]
        for stage in self.refinement:
            stages.append(stage(features, *stages[-1]))
        return stages


# -- OpenPose (Cao et al. 2021), multi-stage ---------------------------------------------------

class _TripleConv(nn.Module):
    """Three 3x3 convs in a row (the receptive field of one 7x7), outputs concatenated."""

    def __init__(self, cin: int, c: int):
        super().__init__()
        self.c1 = ConvBlock(cin, c, 3, act="prelu")
        self.c2 = ConvBlock(c, c, 3, act="prelu")
        self.c3 = ConvBlock(c, c, 3, act="prelu")

    def forward(self, x):
        a = self.c1(x)
        b = self.c2(a)
        return torch.cat([a, b, self.c3(b)], dim=1)


class _OpenPoseStage(nn.Module):
    """``blocks`` triple-conv blocks, then 1x1 ``hidden`` and 1x1 to ``cout`` channels."""

    def __init__(self, cin: int, cout: int, width: int, blocks: int, hidden: int):
        super().__init__()
        layers, c = [], cin
        for _ in range(blocks):
            layers.append(_TripleConv(c, width))
            c = 3 * width
        layers += [ConvBlock(c, hidden, 1, act="prelu"), ConvBlock(hidden, cout, 1, act=None)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class OpenPoseNet(nn.Module):
    """T_P PAF stages then T_C confidence-map stages (see the module docstring).

    ``backbone_widths``: channels of the VGG-style backbone's three stride levels (two 3x3
    convs each, max-pool between), ending at stride 8 with ``features`` channels.
    ``width``, ``blocks``, ``hidden``: per stage, the 3x3 width, the number of triple-conv
    blocks and the 1x1 width.
    """

    arch = "openpose"

    def __init__(self, n_heatmaps: int = 19, n_pafs: int = 38, paf_stages: int = 2,
                 cm_stages: int = 1, backbone_widths: Sequence[int] = (32, 64, 128),
                 features: int = 128, width: int = 64, blocks: int = 3, hidden: int = 128):
        super().__init__()
        if paf_stages < 1 or cm_stages < 1:
            raise ValueError("OpenPoseNet needs at least one PAF and one confidence-map stage")
        self.config = {"n_heatmaps": n_heatmaps, "n_pafs": n_pafs, "paf_stages": paf_stages,
                       "cm_stages": cm_stages, "backbone_widths": list(backbone_widths),
                       "features": features, "width": width, "blocks": blocks, "hidden": hidden}
        self.normalise = _Normalise()
        layers, c = [], 3
        for level, w in enumerate(backbone_widths):
            if level:
                layers.append(nn.MaxPool2d(2, 2))
            layers += [ConvBlock(c, w, 3, bn=True), ConvBlock(w, w, 3, bn=True)]
            c = w
        layers += [nn.MaxPool2d(2, 2), ConvBlock(c, features, 3, bn=True), ConvBlock(features, features, 3)]
        self.backbone = nn.Sequential(*layers)
        self.paf_stages = nn.ModuleList(
            _OpenPoseStage(features + (n_pafs if t else 0), n_pafs, width, blocks, hidden)
            for t in range(paf_stages)
        )
        self.cm_stages = nn.ModuleList(
            _OpenPoseStage(features + n_pafs + (n_heatmaps if t else 0), n_heatmaps, width, blocks, hidden)
            for t in range(cm_stages)
        )

    def forward(self, x) -> list[Stage]:
        features = self.backbone(self.normalise(x))
        stages: list[Stage] = []
        pafs = None
        for t, stage in enumerate(self.paf_stages):
            pafs = stage(features if t == 0 else torch.cat([features, pafs], dim=1))
            stages.append((None, pafs))
        heatmaps = None
        for t, stage in enumerate(self.cm_stages):
            inputs = [features, pafs] + ([heatmaps] if t else [])
            heatmaps = stage(torch.cat(inputs, dim=1))
            stages.append((heatmaps, None))
        return stages


ARCHS = {"lightweight": LightweightOpenPose, "openpose": OpenPoseNet}


def build_network(arch: str, **config) -> nn.Module:
    """A network by architecture name (``lightweight``, ``openpose``) and its constructor config."""
    try:
        cls = ARCHS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture '{arch}' (known: {', '.join(ARCHS)})") from None
    return cls(**config)


def final_maps(stages: list[Stage]) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's output: the last stage's heatmaps and the last stage's PAFs."""
    heatmaps = next(h for h, _ in reversed(stages) if h is not None)
    pafs = next(p for _, p in reversed(stages) if p is not None)
    return heatmaps, pafs


class InferenceWrapper(nn.Module):
    """``x -> (heatmaps, pafs)`` of the last stages, for export and comparison."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return final_maps(self.net(x))
