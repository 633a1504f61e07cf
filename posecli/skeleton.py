"""Skeleton profiles: part names, limbs, PAF channels and colours, the single copy.

A skeleton says how a network's output channels are laid out:

* ``parts``: K part names, heatmap channel ``k`` belongs to part ``k``;
  a background channel, when the network has one, comes after the parts.
* ``limbs``: L pairs ``(a, b)`` of part indices, in the order the parser assembles
  people (a tree grown from the neck, then redundant limbs).
* ``paf_channels``: for limb ``l`` the PAF channel pair ``(cx, cy)`` holding the x and y
  components of the unit vector that points from part ``a`` to part ``b``.

Built-in profiles: ``coco18`` (CMU's COCO network and Lightweight OpenPose) and
``body25`` (CMU's BODY_25 network). Profiles are plain data tables; a model's metadata
can also carry a whole skeleton in the same form (see :meth:`Skeleton.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .errors import ModelError

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Skeleton:
    """The layout of one family of networks' outputs (see the module docstring)."""

    name: str
    parts: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    paf_channels: tuple[tuple[int, int], ...]
    background: bool = True
    # Limbs drawn by the renderer (redundant ones such as shoulder-ear are left out).
    render_limbs: tuple[int, ...] | None = None
    # One RGB colour per part, OpenPose's palette; limbs take the colour of part b.
    colors: tuple[RGB, ...] = ()
    # COCO-17 order as indices into ``parts`` (None where the profile has no such part).
    coco17: tuple[int, ...] | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        n_parts = len(self.parts)
        if len(set(self.parts)) != n_parts:
            raise ModelError(f"skeleton '{self.name}': part names repeat")
        if len(self.limbs) != len(self.paf_channels):
            raise ModelError(
                f"skeleton '{self.name}': {len(self.limbs)} limbs but "
                f"{len(self.paf_channels)} PAF channel pairs"
            )
        for a, b in self.limbs:
            if not (0 <= a < n_parts and 0 <= b < n_parts) or a == b:
                raise ModelError(f"skeleton '{self.name}': bad limb ({a}, {b})")
        channels = [c for pair in self.paf_channels for c in pair]
        if len(set(channels)) != len(channels) or min(channels, default=0) < 0:
            raise ModelError(f"skeleton '{self.name}': PAF channels repeat or are negative")
        if self.colors and len(self.colors) != n_parts:
            raise ModelError(f"skeleton '{self.name}': needs one colour per part")
        if self.coco17 is not None and len(self.coco17) != 17:
            raise ModelError(f"skeleton '{self.name}': coco17 needs 17 entries")
        if self.coco17 is not None and any(i is not None and not 0 <= i < n_parts for i in self.coco17):
            raise ModelError(f"skeleton '{self.name}': coco17 names a part that does not exist")
        if self.render_limbs is not None and any(not 0 <= i < len(self.limbs) for i in self.render_limbs):
            raise ModelError(f"skeleton '{self.name}': render_limbs names a limb that does not exist")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.colors):
            raise ModelError(f"skeleton '{self.name}': colours must be three numbers from 0 to 255")

    # -- sizes ---------------------------------------------------------------------------
    @property
    def num_parts(self) -> int:
        """K, the number of parts (heatmap channels without the background)."""
        return len(self.parts)

    @property
    def num_limbs(self) -> int:
        """L, the number of limbs (PAF channel pairs)."""
        return len(self.limbs)

    @property
    def num_heatmaps(self) -> int:
        """Heatmap channels the network outputs: K, plus one for the background."""
        return self.num_parts + (1 if self.background else 0)

    @property
    def num_pafs(self) -> int:
        """PAF channels the network outputs: 2 L."""
        return 2 * self.num_limbs

    @property
    def drawn_limbs(self) -> tuple[int, ...]:
        """Indices of the limbs the renderer draws."""
        if self.render_limbs is None:
            return tuple(range(self.num_limbs))
        return self.render_limbs

    def index(self, part: str) -> int:
        """Index of a part by name."""
        try:
            return self.parts.index(part)
        except ValueError:
            raise KeyError(f"skeleton '{self.name}' has no part '{part}'") from None

    # -- left/right mirroring (for --flip test-time augmentation and training) ---------------
    @cached_property
    def flip_parts(self) -> tuple[int, ...]:
        """For each part, the index of its mirror image (``l_x`` <-> ``r_x``); itself if none."""
        out = []
        for name in self.parts:
            if name.startswith("l_"):
                twin = "r_" + name[2:]
            elif name.startswith("r_"):
                twin = "l_" + name[2:]
            else:
                twin = name
            out.append(self.parts.index(twin) if twin in self.parts else self.parts.index(name))
        return tuple(out)

    @cached_property
    def flip_limbs(self) -> tuple[tuple[int, float], ...]:
        """For each limb, ``(mirror limb index, sign)``.

        Mirroring an image maps limb (a, b) to limb (flip(a), flip(b)); when the skeleton
        only has it as (flip(b), flip(a)) the vector direction flips too (sign -1).
        The x component of a mirrored PAF is additionally negated by the caller.
        """
        lookup = {limb: i for i, limb in enumerate(self.limbs)}
        out = []
        for a, b in self.limbs:
            fa, fb = self.flip_parts[a], self.flip_parts[b]
            if (fa, fb) in lookup:
                out.append((lookup[(fa, fb)], 1.0))
            elif (fb, fa) in lookup:
                out.append((lookup[(fb, fa)], -1.0))
            else:
                raise ModelError(f"skeleton '{self.name}': limb ({a}, {b}) has no mirror limb")
        return tuple(out)

    # -- (de)serialisation for model metadata -------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-JSON form, as stored in model metadata."""
        d = {
            "name": self.name,
            "parts": list(self.parts),
            "limbs": [list(l) for l in self.limbs],
            "paf_channels": [list(c) for c in self.paf_channels],
            "background": self.background,
        }
        if self.render_limbs is not None:
            d["render_limbs"] = list(self.render_limbs)
        if self.colors:
            d["colors"] = [list(c) for c in self.colors]
        if self.coco17 is not None:
            d["coco17"] = list(self.coco17)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Skeleton":
        """Inverse of :meth:`to_dict`; raises :class:`ModelError` on a malformed record."""
        try:
            return cls(
                name=str(d.get("name", "custom")),
                parts=tuple(str(p) for p in d["parts"]),
                limbs=tuple((int(a), int(b)) for a, b in d["limbs"]),
                paf_channels=tuple((int(x), int(y)) for x, y in d["paf_channels"]),
                background=bool(d.get("background", True)),
                render_limbs=None if d.get("render_limbs") is None else tuple(int(i) for i in d["render_limbs"]),
                colors=tuple(tuple(int(v) for v in c) for c in d.get("colors", ())),
                coco17=None if d.get("coco17") is None else tuple(None if i is None else int(i) for i in d["coco17"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"malformed skeleton record ({exc})") from None


# ---------------------------------------------------------------------------------------------
# Built-in profiles
# ---------------------------------------------------------------------------------------------

COCO18 = Skeleton(
    name="coco18",
    parts=(
        "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
        "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
        "r_eye", "l_eye", "r_ear", "l_ear",
    ),
    limbs=(
        (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
        (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
        (2, 16), (5, 17),
    ),
    paf_channels=(
        (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
        (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37),
        (18, 19), (26, 27),
    ),
    background=True,
    render_limbs=tuple(range(17)),  # the last two (shoulder-ear) are redundant
    colors=(
        (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0),
        (170, 255, 0), (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170),
        (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (255, 0, 170),
        (170, 0, 255), (255, 0, 255), (85, 0, 255),
    ),
    coco17=(0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10),
)

BODY25 = Skeleton(
    name="body25",
    parts=(
        "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
        "l_wrist", "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
        "r_eye", "l_eye", "r_ear", "l_ear", "l_big_toe", "l_small_toe", "l_heel",
        "r_big_toe", "r_small_toe", "r_heel",
    ),
    limbs=(
        (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
        (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18),
        (2, 17), (5, 18), (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
    ),
    paf_channels=(
        (0, 1), (14, 15), (22, 23), (16, 17), (18, 19), (24, 25), (26, 27), (6, 7), (2, 3),
        (4, 5), (8, 9), (10, 11), (12, 13), (30, 31), (32, 33), (36, 37), (34, 35),
        (38, 39), (20, 21), (28, 29), (40, 41), (42, 43), (44, 45), (46, 47), (48, 49),
        (50, 51),
    ),
    background=True,
    # OpenPose draws every BODY_25 limb but the two shoulder-ear ones.
    render_limbs=tuple(i for i in range(26) if i not in (18, 19)),
    colors=(
        (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0),
        (170, 255, 0), (85, 255, 0), (0, 255, 0), (255, 0, 0), (0, 255, 85),
        (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255),
        (255, 0, 170), (170, 0, 255), (255, 0, 255), (85, 0, 255), (0, 0, 255),
        (0, 0, 255), (0, 0, 255), (0, 255, 255), (0, 255, 255), (0, 255, 255),
    ),
    coco17=(0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11),
)

PROFILES: dict[str, Skeleton] = {s.name: s for s in (COCO18, BODY25)}

# COCO-17 keypoint names, in COCO's order.
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)


def get_profile(name: str) -> Skeleton:
    """A built-in skeleton profile by name (``coco18``, ``body25``)."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ModelError(
            f"unknown skeleton profile '{name}' (known: {', '.join(sorted(PROFILES))})"
        ) from None
