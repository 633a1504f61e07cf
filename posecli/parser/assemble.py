"""People from matched limbs: OpenPose's subset assembly, with merging and pruning.

K parts, M part candidates, P matched limbs. A person is a row of K candidate indices
(``NO_PART`` where the part is missing), a running score (sum of its parts' peak scores and
its limbs' scores) and a part count. Limbs are visited in skeleton order:

* neither end belongs to anyone: a new person (tree limbs only, unless
  ``config.redundant_new_people``);
* one end belongs to a person who lacks the other part: that part joins them;
* the ends belong to two people with no part in common: they merge;
* both ends already belong to the same person (a redundant limb such as shoulder-ear
  closing a cycle): its score is added;
* anything else would override an assigned part and is ignored.

Then people with fewer than ``min_parts`` parts or a mean score (score / parts) below
``min_score`` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..skeleton import Skeleton
from .config import ParserConfig
from .limbs import Matches

NO_PART = -1


@dataclass(frozen=True)
class Assembly:
    """N people: ``members`` (N, K) candidate index or NO_PART, ``score`` (N,) mean score."""

    members: np.ndarray
    score: np.ndarray


@lru_cache(maxsize=32)
def redundant_limbs(skeleton: Skeleton) -> tuple[bool, ...]:
    """For each limb, True when its parts are already joined by earlier limbs (a cycle)."""
    root = list(range(skeleton.num_parts))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    out = []
    for a, b in skeleton.limbs:
        ra, rb = find(a), find(b)
        out.append(ra == rb)
        root[ra] = rb
    return tuple(out)


def assemble(
    matches: Matches,
    cand_part: np.ndarray,
    cand_score: np.ndarray,
    skeleton: Skeleton,
    config: ParserConfig,
) -> Assembly:
    """Group matched limbs into people (see the module docstring)."""
    k = skeleton.num_parts
    part_of = cand_part.tolist()
    peak = cand_score.tolist()
    limbs = skeleton.limbs
    redundant = redundant_limbs(skeleton)
    owner = [NO_PART] * len(part_of)  # candidate -> person
    rows: list[list[int]] = []
    total: list[float] = []
    count: list[int] = []
    alive: list[bool] = []

    def new_person(cands: list[int], score: float) -> None:
        row = [NO_PART] * k
        for c in cands:
            row[part_of[c]] = c
            owner[c] = len(rows)
        rows.append(row)
        total.append(score + sum(peak[c] for c in cands))
        count.append(len(cands))
        alive.append(True)

    def join(person: int, cand: int, score: float) -> None:
        rows[person][part_of[cand]] = cand
        owner[cand] = person
        total[person] += peak[cand] + score
        count[person] += 1

    for l, ca, cb, s in zip(
        matches.limb.tolist(), matches.a.tolist(), matches.b.tolist(), matches.score.tolist()
    ):
        pa, pb = owner[ca], owner[cb]
        part_a, part_b = limbs[l]
        if pa == NO_PART and pb == NO_PART:
            # A new person from this limb alone.
            if not redundant[l] or config.redundant_new_people:
                new_person([ca, cb], s)
        elif pb == NO_PART:
            if rows[pa][part_b] == NO_PART:
                join(pa, cb, s)
        elif pa == NO_PART:
            if rows[pb][part_a] == NO_PART:
                join(pb, ca, s)
        elif pa == pb:
            # Redundant limb inside one person: it only confirms them.
            total[pa] += s
        else:
            # Two partial people linked by this limb: merge when they share no part.
            row_a, row_b = rows[pa], rows[pb]
            if all(x == NO_PART or y == NO_PART for x, y in zip(row_a, row_b)):
                for part, c in enumerate(row_b):
                    if c != NO_PART:
                        row_a[part] = c
                        owner[c] = pa
                total[pa] += total[pb] + s
                count[pa] += count[pb]
                alive[pb] = False

    # Lone candidates are one-part people (only kept when min_parts allows).
    if config.min_parts <= 1:
        for c, o in enumerate(owner):
            if o == NO_PART:
                new_person([c], 0.0)

    # Prune by part count and mean score.
    keep = [
        i for i in range(len(rows))
        if alive[i] and count[i] >= config.min_parts and total[i] / count[i] >= config.min_score
    ]
    if not keep:
        return Assembly(np.zeros((0, k), dtype=np.intp), np.zeros(0))
    members = np.array([rows[i] for i in keep], dtype=np.intp).reshape(len(keep), k)
    score = np.array([total[i] / count[i] for i in keep], dtype=np.float64)
    return Assembly(members, score)
