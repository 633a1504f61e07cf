"""A video with ground truth, made from annotated COCO photos: each photo is shown for a
couple of seconds while a virtual camera pans and zooms over it, and its keypoint
annotations are moved with the same affine transform in every frame.

Consecutive frames are nearly the same picture (as in a real video), each photo change is
a scene cut, and COCO's keypoint AP can be computed over all frames (one COCO image per
frame, ids from 1). Used by ``python -m bench fastest`` (``--mode fastest`` against
``--mode fast``) and its tests::

    clip = PhotoClip.from_coco([("person_keypoints.json", "images/")], photos=20)
    clip.write("clip.mp4", "clip.json")       # the video and its COCO annotations

The camera: the photo is fitted inside the frame (all of it visible, letterboxed), then
zoomed in from 1 to :attr:`PhotoClipConfig.zoom` while its centre travels
:attr:`PhotoClipConfig.pan` of the frame sideways and half that vertically, eased so that
the motion starts and stops smoothly. Keypoints moved outside the frame become
unlabelled (v = 0).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class PhotoClipConfig:
    """``size_wh``: frame size; ``frames_per_photo``, ``fps``: how long each photo is shown;
    ``zoom``: the last frame's magnification over the first; ``pan``: how far the photo's
    centre travels, as a fraction of the frame width."""

    size_wh: tuple[int, int] = (1280, 720)
    frames_per_photo: int = 50
    fps: float = 25.0
    zoom: float = 1.35
    pan: float = 0.12


@dataclass(frozen=True)
class Photo:
    """One annotated photo: its file and its COCO person annotations (photo pixels)."""

    path: Path
    annotations: tuple[dict, ...]


class PhotoClip:
    """The photos of a clip, in order; :meth:`frames` renders it, :meth:`coco` is its truth."""

    def __init__(self, photos: Sequence[Photo], config: PhotoClipConfig = PhotoClipConfig()):
        if not photos:
            raise InputError("photos=[]: a clip needs at least one annotated photo")
        self.photos = list(photos)
        self.config = config

    @classmethod
    def from_coco(cls, sets: Sequence[tuple[str | Path, str | Path]], photos: int = 20,
                  config: PhotoClipConfig = PhotoClipConfig(), min_people: int = 2) -> PhotoClip:
        """The ``photos`` photos of the COCO keypoint ``sets`` ((annotation file, images folder)
        pairs) with the most annotated people (at least ``min_people`` with keypoints where
        there are enough such photos), in a fixed order."""
        found = []
        for ann_path, folder in sets:
            data = json.loads(Path(ann_path).read_text(encoding="utf-8"))
            by_image: dict[int, list] = {}
            for a in data["annotations"]:
                by_image.setdefault(int(a["image_id"]), []).append(a)
            for im in data["images"]:
                anns = by_image.get(int(im["id"]), [])
                people = sum(1 for a in anns if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0))
                path = Path(folder) / im["file_name"]
                if people and path.is_file():
                    found.append((people, path, tuple(anns)))
        many = [f for f in found if f[0] >= min_people]
        pool = many if len(many) >= photos else found
        # spread over the set (by name: reproducible) rather than only the most crowded
        pool.sort(key=lambda f: f[1].name)
        step = max(1, len(pool) // max(photos, 1))
        chosen = pool[::step][:photos]
        return cls([Photo(path, anns) for _, path, anns in chosen], config)

    def __len__(self) -> int:
        return len(self.photos) * self.config.frames_per_photo

    def camera(self, photo_wh: tuple[int, int], i: int) -> np.ndarray:
        """(2, 3) affine: photo pixels -> frame pixels at the photo's ``i``-th frame."""
        cfg = self.config
        fw, fh = cfg.size_wh
        pw, ph = photo_wh
        t = i / max(cfg.frames_per_photo - 1, 1)
        ease = 0.5 - 0.5 * np.cos(np.pi * t)  # 0 -> 1, smooth at both ends
        s = min(fw / pw, fh / ph) * (1.0 + (cfg.zoom - 1.0) * ease)
        cx = fw / 2 + cfg.pan * fw * (ease - 0.5)
        cy = fh / 2 + 0.5 * cfg.pan * fh * (0.5 - ease)
        return np.array([[s, 0.0, cx - s * pw / 2], [0.0, s, cy - s * ph / 2]])

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame index, (H, W, 3) BGR frame)`` of the whole clip."""
        cfg = self.config
        n = 0
        for photo in self.photos:
            image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
            if image is None:
                raise InputError("cannot decode", path=photo.path)
            for i in range(cfg.frames_per_photo):
                m = self.camera((image.shape[1], image.shape[0]), i)
                yield n, cv2.warpAffine(image, m, cfg.size_wh, flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
                n += 1

    def coco(self) -> dict:
        """COCO keypoint annotations of every frame (image id = frame index + 1)."""
        cfg = self.config
        w, h = cfg.size_wh
        images, anns = [], []
        n = 0
        for photo in self.photos:
            pw, ph = _photo_size(photo.path)
            for i in range(cfg.frames_per_photo):
                m = self.camera((pw, ph), i)
                images.append({"id": n + 1, "file_name": f"frame_{n:06d}", "width": w, "height": h})
                for a in photo.annotations:
                    anns.append(_moved(a, m, (w, h), n + 1, len(anns) + 1))
                n += 1
        return {"images": images, "annotations": anns,
                "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}

    def write(self, video: str | Path, annotations: str | Path | None = None) -> Path:
        """Write the clip (MJPEG .avi or the container OpenCV picks for the suffix) and its COCO truth."""
        cfg = self.config
        video = Path(video)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if video.suffix.lower() == ".avi" else "mp4v"))
        writer = cv2.VideoWriter(str(video), fourcc, cfg.fps, cfg.size_wh)
        if not writer.isOpened():
            raise InputError("cannot write a video here", path=video)
        try:
            for _, frame in self.frames():
                writer.write(frame)
        finally:
            writer.release()
        if annotations is not None:
            Path(annotations).write_text(json.dumps(self.coco()), encoding="utf-8")
        return video


def _photo_size(path: Path) -> tuple[int, int]:
    """(width, height) of a photo (decoded as :meth:`PhotoClip.frames` decodes it)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("cannot decode", path=path)
    return image.shape[1], image.shape[0]


def _moved(ann: dict, m: np.ndarray, size_wh, image_id: int, ann_id: int) -> dict:
    """A COCO annotation moved by the (2, 3) affine ``m`` into a frame of ``size_wh``."""
    out = copy.deepcopy(ann)
    s = float(m[0, 0])
    kp = np.asarray(ann.get("keypoints", [0] * 51), dtype=np.float64).reshape(-1, 3)
    xy = kp[:, :2] @ m[:, :2].T + m[:, 2]
    w, h = size_wh
    labelled = (kp[:, 2] > 0) & (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    kp = np.where(labelled[:, None], np.column_stack([xy, kp[:, 2]]), 0.0)
    x, y, bw, bh = ann.get("bbox", [0, 0, 0, 0])
    x0, y0 = np.array([x, y]) @ m[:, :2].T + m[:, 2]
    out.update(id=ann_id, image_id=image_id, keypoints=[round(float(v), 2) for v in kp.ravel()],
               num_keypoints=int(labelled.sum()), area=float(ann.get("area", 0.0)) * s * s,
               bbox=[round(float(x0), 2), round(float(y0), 2), round(bw * s, 2), round(bh * s, 2)])
    out.pop("segmentation", None)
    return out
