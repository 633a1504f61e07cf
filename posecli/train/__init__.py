"""Training OpenPose-style networks (optional extra ``train``: PyTorch).

Nothing on the inference path imports this package. Importing it (or any module in it)
without torch raises :class:`posecli.errors.MissingExtraError`.

Modules, in the order data flows:

* ``groundtruth``: COCO-17 -> skeleton keypoints, the loss mask, the maps of one sample
  (heatmaps and PAFs come from :mod:`posecli.train.targets`);
* ``dataset``: COCO-format reader with augmentation, a torch ``Dataset``;
* ``network``: Lightweight OpenPose and the multi-stage OpenPose design;
* ``weights``: loading the imported default model's weights into the lightweight network;
* ``loss``: masked L2 at every stage, summed;
* ``loop``: the training loop, checkpoints, resume, validation hook;
* ``export``: checkpoint -> ONNX with posecli metadata.
"""

from __future__ import annotations

from ..errors import MissingExtraError

try:
    import torch  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingExtraError("torch", "train", "training") from None
