"""The zoom-in pass: small people seen again at the size the network sees best.

One global network resolution cannot serve every person: at height 256 a person 30 pixels
tall in a 640x480 photo is 16 input pixels, two heatmap cells, while a person filling the
photo is already as large as the network likes. After the first pass,

1. *candidates*: people whose size in the first pass's network input is below
   :attr:`ZoomConfig.below`, and clusters of part candidates that no kept person owns
   (the parser's weak partial people), strongest first, at most :attr:`ZoomConfig.max_crops`;
2. *crops*: each is cut from the original image around its centre, scaled so that the
   person's estimated height becomes :attr:`ZoomConfig.person_height` (the height at which
   the network is most accurate, measured: see the README), into one square of
   :attr:`ZoomConfig.crop_size` pixels; the crops run through the network as ONE batch;
3. *parse and map back*: each crop's maps are parsed and the people mapped back to image
   pixels through the crop's one inverse transform (a scale and a shift); people cut by the
   crop's border are dropped (they belong to the first pass);
4. *merge*: a zoomed person replaces the first-pass person it matches by keypoint
   similarity (OKS >= :attr:`ZoomConfig.match_oks`), a zoomed person matching nobody is
   new, and a second zoomed copy of the same person is a duplicate and dropped. The
   similarity allows the first pass's keypoints the error of its coarse grid (the variance
   of a uniform error over one map cell, in image pixels): a person a few cells tall is
   placed there only to within a cell, and judged by OKS at its own small scale alone, a
   small skier's zoomed copy sat at 0.52 from its first-pass self and fell to 0.498, so
   came back twice, when the keypoint offset moved the two views by different amounts.

Large people are never cropped (the size test), so the pass cannot hurt them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from ..types import Person

# COCO's OKS sigmas per part name (sides dropped); other parts use the mean.
_SIGMAS = {"nose": 0.026, "eye": 0.025, "ear": 0.035, "neck": 0.079, "shoulder": 0.079, "elbow": 0.072,
           "wrist": 0.062, "hip": 0.107, "knee": 0.087, "ankle": 0.089}


@dataclass(frozen=True)
class ZoomConfig:
    """Settings of the zoom-in pass (reference values measured on the shared COCO sets).

    ``person_height``: a zoomed person's estimated height in the crop, network-input pixels.
    ``below``: people smaller than this in the first pass's network input are zoomed.
    ``crop_size``: side of the square crops (a multiple of the stride).
    ``max_crops``: crops per image, the strongest candidates first (bounds the cost).
    ``max_upscale``: crops are enlarged at most this much over the original pixels.
    ``size_factor``: a person's height is this times the extent of their keypoints (the
    keypoints miss the top of the head and the soles).
    ``min_parts_weak``: clusters of unowned part candidates need this many parts to be zoomed.
    ``candidate_threshold``: with the pass on, the first pass looks for part peaks down to
    this heatmap value (the preset's own threshold when lower), so that people too small to
    pass it at the first resolution still become candidates; people are still pruned by the
    preset's ``min_parts`` and ``min_score``.
    ``match_oks``: a zoomed person at least this similar to a first-pass person replaces it.
    ``edge``: zoomed people with a keypoint this close to the crop's border (fraction of
    the crop) are cut by it and dropped.
    ``smallest``: the smallest person the first pass finds reliably, in its input pixels; photos are
    decoded with just enough pixels to zoom such a person (a 96-megapixel JPEG need not be
    decoded whole: see :meth:`decode_height`).
    """

    person_height: int = 176
    below: float = 128.0
    crop_size: int = 256
    max_crops: int = 8
    max_upscale: float = 6.0
    size_factor: float = 1.15
    min_parts_weak: int = 2
    candidate_threshold: float = 0.05
    match_oks: float = 0.5
    edge: float = 0.03
    smallest: float = 24.0

    def __post_init__(self) -> None:
        for name in ("person_height", "below", "crop_size", "max_upscale", "size_factor", "match_oks",
                     "candidate_threshold", "smallest"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ConfigError(f"zoom {name}={v!r}: must be a positive number")
        if not isinstance(self.max_crops, int) or self.max_crops < 0:
            raise ConfigError(f"zoom max_crops={self.max_crops!r}: must be an integer >= 0")
        if not 0 <= self.edge < 0.5:
            raise ConfigError(f"zoom edge={self.edge!r}: must be in [0, 0.5)")


    def decode_height(self, first_height: float) -> int:
        """Image height (pixels) that zooms the smallest person found at ``first_height`` fully."""
        return int(np.ceil(first_height * self.person_height / self.smallest))


@dataclass(frozen=True)
class Crop:
    """A square crop: image x, y -> crop input ``x * scale + shift``."""

    scale: float
    shift: tuple[float, float]

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.scale, 0.0, self.shift[0]], [0.0, self.scale, self.shift[1]]], dtype=np.float64)

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) crop-input x, y -> image x, y (the one inverse transform)."""
        return (np.asarray(xy, dtype=np.float64) - np.asarray(self.shift)) / self.scale


def keypoint_box(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(min_xy, max_xy)`` of the finite rows of (K, 2) ``xy``, None when there are none."""
    pts = xy[np.isfinite(xy).all(axis=1)]
    if len(pts) == 0:
        return None
    return pts.min(axis=0), pts.max(axis=0)


def person_size(person: Person, config: ZoomConfig) -> float:
    """Estimated height of a person in image pixels (0 with fewer than two keypoints)."""
    box = keypoint_box(person.xy)
    if box is None or person.num_visible < 2:
        return 0.0
    return float((box[1] - box[0]).max()) * config.size_factor


def sigmas(skeleton) -> np.ndarray:
    """(K,) OKS sigma per part of ``skeleton`` (COCO's values by name)."""
    out = []
    for name in skeleton.parts:
        base = name.lower().removeprefix("l_").removeprefix("r_").removeprefix("left_").removeprefix("right_")
        out.append(_SIGMAS.get(base, 0.08))
    return np.asarray(out)


def similarity(a: Person, b: Person, k2: np.ndarray, spread: float = 0.0) -> float:
    """OKS of two people over their common keypoints, at the larger one's scale (0..1);
    ``spread``: a variance (image pixels squared) added to every keypoint's, for keypoints
    known only to within a coarse grid."""
    both = a.visible & b.visible
    if not both.any():
        return 0.0
    area = max(_area(a), _area(b), 1.0)
    d2 = ((a.xy[both] - b.xy[both]) ** 2).sum(axis=1)
    return float(np.exp(-d2 / (2.0 * (area * k2[both] + spread))).sum() / max(both.sum(), 1))


def _area(p: Person) -> float:
    box = keypoint_box(p.xy)
    if box is None:
        return 0.0
    w, h = box[1] - box[0]
    return float(w * h) * 1.25


def plan_crops(
    kept: list[Person],
    weak: list[Person],
    first_scale: float,
    config: ZoomConfig,
) -> list[Crop]:
    """Crops for the small kept people and the weak partial people, strongest first.

    ``first_scale``: network-input pixels per image pixel in the first pass.
    """
    s_crop = config.crop_size
    candidates = []  # (priority, centre, size)
    for group, people in ((0, kept), (1, weak)):
        for p in people:
            size = person_size(p, config)
            if size <= 0 or size * first_scale >= config.below:
                continue
            if group == 1 and p.num_visible < config.min_parts_weak:
                continue
            lo, hi = keypoint_box(p.xy)
            candidates.append((group, -p.score, (lo + hi) / 2, size))
    candidates.sort(key=lambda c: (c[0], c[1]))
    crops: list[Crop] = []
    for _, _, centre, size in candidates:
        if len(crops) >= config.max_crops:
            break
        scale = min(config.person_height / size, config.max_upscale)
        scale = max(scale, first_scale)  # never look at a person smaller than the first pass did
        # One crop serves every candidate whose centre falls well inside it at a similar scale.
        if any(_covers(c, centre, scale, s_crop) for c in crops):
            continue
        shift = (s_crop / 2 - scale * centre[0], s_crop / 2 - scale * centre[1])
        crops.append(Crop(float(scale), (float(shift[0]), float(shift[1]))))
    return crops


def _covers(crop: Crop, centre: np.ndarray, scale: float, side: int) -> bool:
    x, y = centre * crop.scale + np.asarray(crop.shift)
    inner = 0.25 * side
    return 0.7 < crop.scale / scale < 1.4 and inner <= x <= side - inner and inner <= y <= side - inner


def cut(image: np.ndarray, crops: list[Crop], side: int, pad_value) -> np.ndarray:
    """(N, side, side, 3) uint8 crops of a BGR image (outside the image: ``pad_value``)."""
    pad = tuple(round(float(v)) for v in pad_value)
    out = np.empty((len(crops), side, side, 3), dtype=np.uint8)
    for i, c in enumerate(crops):
        cv2.warpAffine(image, c.matrix, (side, side), dst=out[i], flags=cv2.INTER_CUBIC,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=pad)
    return out


def inside(person: Person, side: int, edge: float) -> bool:
    """True when no keypoint of a crop's person (crop-input pixels) lies within ``edge`` of the border."""
    box = keypoint_box(person.xy)
    if box is None:
        return False
    m = edge * side
    return bool((box[0] >= m).all() and (box[1] <= side - 1 - m).all())


def merge(first: list[Person], zoomed: list[Person], config: ZoomConfig, first_cell: float = 0.0) -> list[Person]:
    """First-pass people with zoomed people merged in (see the module docstring), strongest
    first. ``first_cell``: the first pass's map cell in image pixels.

    Each zoomed person, strongest first, replaces the first-pass person most similar to it
    when that one is at least :attr:`ZoomConfig.match_oks` similar and not yet replaced (a
    one-to-one pairing of largest total similarity instead lost 0.01 AP on every set: it
    pairs a second copy with a different person nearby and drops that person).
    """
    if not zoomed:
        return first
    k2 = (2.0 * sigmas(zoomed[0].skeleton)) ** 2
    grid = first_cell**2 / 12.0  # variance of an error uniform over one cell
    out = list(first)
    replaced = [False] * len(first)
    added: list[Person] = []
    for z in sorted(zoomed, key=lambda p: -p.score):
        sims = [similarity(z, p, k2, grid) for p in first]
        best = int(np.argmax(sims)) if sims else -1
        if best >= 0 and sims[best] >= config.match_oks:
            if not replaced[best]:
                replaced[best] = True
                out[best] = z
            continue  # else a second zoomed copy of the same person
        if any(similarity(z, a, k2) >= config.match_oks for a in added):
            continue
        added.append(z)
    people = out + added
    people.sort(key=lambda p: -p.score)
    return people
