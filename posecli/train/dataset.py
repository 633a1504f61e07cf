"""COCO-format keypoint dataset with OpenPose's augmentation, as a torch ``Dataset``.

One sample is a network input of ``input_hw`` pixels cut from one image by a single affine
warp (scale, rotation, translation, optional mirror), then colour jitter, and the targets of
that input at the output stride:

* ``image``: (3, H, W) float32 BGR 0-255 (the networks normalise inside);
* ``heatmaps``: (K+1, H/s, W/s); ``pafs``: (2L, H/s, W/s); ``mask``: (1, H/s, W/s).

Scale follows CMU's recipe: a random annotated person is brought to ``target_height`` times
the input height, times a random factor in ``scale_range``, and placed at the centre
(with jitter). Mirroring swaps left and right parts (``skeleton.flip_parts``) before
the PAFs are drawn, so the limb vectors come out right without touching the maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import InputError
from ..skeleton import COCO18, Skeleton
from .groundtruth import coco17_to_skeleton, ignore_mask, render_sample


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges (CMU OpenPose's reference values, rotation in degrees)."""

    enabled: bool = True
    target_height: float = 0.6       # person height / input height before the random factor
    scale_range: tuple[float, float] = (0.5, 1.1)
    max_rotation: float = 40.0
    max_shift: float = 40.0          # centre jitter in input pixels
    flip_prob: float = 0.5
    brightness: float = 32.0         # +- added to every channel
    contrast: float = 0.25           # factor in 1 +- contrast
    saturation: float = 0.25         # factor in 1 +- saturation
    pad_value: tuple[float, float, float] = (128.0, 128.0, 128.0)


@dataclass(frozen=True)
class TargetConfig:
    """How ground truth is drawn: ``sigma`` and ``limb_width`` in input pixels."""

    stride: int = 8
    sigma: float = 7.0
    limb_width: float = 8.0


class CocoPoseDataset(Dataset):
    """Images of a COCO keypoint file that have at least one person with keypoints.

    ``input_hw``: network input (H, W), multiples of ``targets.stride``.
    """

    def __init__(
        self,
        annotations: str | Path,
        images: str | Path,
        input_hw: tuple[int, int] = (256, 256),
        skeleton: Skeleton = COCO18,
        augment: AugmentConfig = AugmentConfig(),
        targets: TargetConfig = TargetConfig(),
    ):
        self.images_dir = Path(images)
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        if self.input_hw[0] % targets.stride or self.input_hw[1] % targets.stride:
            raise InputError(f"input size {self.input_hw} is not a multiple of the stride {targets.stride}")
        self.skeleton = skeleton
        self.augment = augment
        self.targets = targets
        self.records = load_coco_keypoints(annotations)
        if not self.records:
            raise InputError("no image with annotated people", path=annotations)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        # Draw from torch's generator so that DataLoader workers and manual_seed both work.
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        rng = np.random.default_rng(seed)
        image = cv2.imread(str(self.images_dir / rec["file_name"]), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError("cannot read image", path=self.images_dir / rec["file_name"])
        h0, w0 = image.shape[:2]
        keypoints = coco17_to_skeleton(rec["keypoints"], self.skeleton)
        mask = ignore_mask(rec["annotations"], h0, w0)
        matrix, flipped = self._transform(rec["boxes"], (h0, w0), rng)

        hi, wi = self.input_hw
        pad = tuple(float(v) for v in self.augment.pad_value)
        image = cv2.warpAffine(image, matrix, (wi, hi), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=pad)
        mask = cv2.warpAffine(mask, matrix, (wi, hi), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
        keypoints = warp_keypoints(keypoints, matrix)
        if flipped:
            keypoints = keypoints[:, list(self.skeleton.flip_parts)]
        if self.augment.enabled:
            image = jitter_colour(image, self.augment, rng)

        t = self.targets
        heatmaps, pafs, grid_mask = render_sample(keypoints, mask, self.skeleton, t.stride, t.sigma, t.limb_width)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)),
            "heatmaps": torch.from_numpy(heatmaps),
            "pafs": torch.from_numpy(pafs),
            "mask": torch.from_numpy(grid_mask),
        }

    def _transform(self, boxes, size_hw, rng) -> tuple[np.ndarray, bool]:
        """(2, 3) affine from image pixels to input pixels, and whether it mirrors."""
        hi, wi = self.input_hw
        h0, w0 = size_hw
        aug = self.augment
        out_centre = np.array([(wi - 1) / 2, (hi - 1) / 2])
        if not aug.enabled:
            # Whole image, fitted and centred: deterministic (validation, tests).
            s = min(hi / h0, wi / w0)
            return _affine(np.array([(w0 - 1) / 2, (h0 - 1) / 2]), s, 0.0, out_centre, False, wi), False
        # Pick a person, bring them to the target height, centre them with jitter.
        i = int(rng.integers(len(boxes)))
        x, y, bw, bh = boxes[i]
        centre = np.array([x + bw / 2, y + bh / 2])
        s = aug.target_height * hi / max(bh, 1.0) * rng.uniform(*aug.scale_range)
        s = float(np.clip(s, 0.05, 8.0))
        angle = rng.uniform(-aug.max_rotation, aug.max_rotation)
        out_centre = out_centre + rng.uniform(-aug.max_shift, aug.max_shift, size=2)
        flip = bool(rng.random() < aug.flip_prob)
        return _affine(centre, s, angle, out_centre, flip, wi), flip


def _affine(centre, scale: float, angle_deg: float, out_centre, flip: bool, out_w: int) -> np.ndarray:
    """Affine taking ``centre`` to ``out_centre``, scaling and rotating about it, then mirroring."""
    a = math.radians(angle_deg)
    rot = scale * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    m = np.zeros((2, 3))
    m[:, :2] = rot
    m[:, 2] = np.asarray(out_centre) - rot @ np.asarray(centre)
    if flip:
        # x' = (W - 1) - x, about pixel centres.
        m[0] = -m[0]
        m[0, 2] += out_w - 1
    return m


def warp_keypoints(keypoints: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, K, 3) x, y, v through a (2, 3) affine; NaN stays NaN."""
    out = keypoints.copy()
    xy = keypoints[..., :2]
    out[..., :2] = xy @ matrix[:, :2].T + matrix[:, 2]
    return out


def jitter_colour(image: np.ndarray, aug: AugmentConfig, rng) -> np.ndarray:
    """Random brightness, contrast and saturation on a BGR uint8 image."""
    img = image.astype(np.float32)
    img = img + rng.uniform(-aug.brightness, aug.brightness)
    mean = img.mean()
    img = (img - mean) * rng.uniform(1 - aug.contrast, 1 + aug.contrast) + mean
    grey = img.mean(axis=2, keepdims=True)
    img = (img - grey) * rng.uniform(1 - aug.saturation, 1 + aug.saturation) + grey
    return np.clip(img, 0, 255).astype(np.uint8)


def load_coco_keypoints(path: str | Path) -> list[dict]:
    """Per image: ``file_name``, ``keypoints`` (N, 17, 3), ``boxes`` (N, 4) of people with
    keypoints, and all its person ``annotations`` (for the mask). Images without a person
    with keypoints are left out."""
    from ..evaluate import MAX_ANNOTATION_BYTES, image_file_name
    from ..io.jsonfile import read_json

    path = Path(path)
    if not path.exists():
        raise InputError("annotation file does not exist", path=path)
    data = read_json(path, max_bytes=MAX_ANNOTATION_BYTES, what="COCO keypoint file")  # size, nesting
    try:
        images = {im["id"]: im for im in data["images"]}
        anns = data["annotations"]
        for im in images.values():  # every image inside the images folder
            image_file_name(im, path)
    except (KeyError, TypeError) as exc:
        raise InputError(f"not a COCO keypoint file ({exc})", path=path) from None
    person_ids = {c["id"] for c in data.get("categories", []) if c.get("name") == "person"} or {1}
    by_image: dict[int, list[dict]] = {}
    for ann in anns:
        if ann.get("category_id", 1) in person_ids and ann.get("image_id") in images:
            by_image.setdefault(ann["image_id"], []).append(ann)
    records = []
    for image_id, group in sorted(by_image.items()):
        people = [a for a in group if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]
        if not people:
            continue
        records.append({
            "id": image_id,
            "file_name": images[image_id]["file_name"],
            "keypoints": np.array([a["keypoints"] for a in people], dtype=np.float64).reshape(-1, 17, 3),
            "boxes": np.array([a["bbox"] for a in people], dtype=np.float64).reshape(-1, 4),
            "annotations": group,
        })
    return records


def make_loader(dataset: CocoPoseDataset, batch_size: int, workers: int = 0, shuffle: bool = True) -> DataLoader:
    """A DataLoader over ``dataset`` that drops no sample (the mini sets are tiny)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      drop_last=False, persistent_workers=workers > 0)
