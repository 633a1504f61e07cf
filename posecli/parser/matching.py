"""Limb matching: which candidate of part a joins which candidate of part b, per limb.

Each limb type is a bipartite graph (candidates of its two parts) weighted by the limb
scores of the valid pairs; each candidate joins at most one limb of each type.

* ``"optimal"``: the matching of largest total score, per limb (the Hungarian algorithm,
  as the OpenPose paper formulates it). Where two people stand close, a wrong pair can
  outscore each right pair alone (its segment runs through both people's fields) while the
  two right pairs together score more: the optimum keeps both people's limbs.
* ``"greedy"``: the strongest pair first, each candidate used once (the reference
  implementations' shortcut; :func:`posecli.parser.limbs.match_greedy`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .limbs import LimbPairs, Matches
from .peaks import Peaks

# Ties between equal totals go to the shorter limbs: a length penalty far below any score step.
_TIE_BREAK = 1e-9


def match_optimal(pairs: LimbPairs, peaks: Peaks) -> Matches:
    """Maximum-score matching of the valid pairs of each limb; grouped by limb in skeleton
    order, strongest first within a limb (as :func:`~posecli.parser.limbs.match_greedy`)."""
    empty = np.zeros(0, dtype=np.intp)
    v = np.flatnonzero(pairs.valid)
    if v.size == 0:
        return Matches(empty, empty, empty, np.zeros(0))
    v = v[np.lexsort((-pairs.score[v], pairs.limb[v]))]  # by limb, strongest first
    # Limbs where no candidate is in two valid pairs keep all of them: only the others
    # (people close together) need the assignment solver.
    m = peaks.count
    limb = pairs.limb[v]
    shared = np.zeros(int(limb.max()) + 1, dtype=bool)
    for ends in (pairs.a[v], pairs.b[v]):
        keys, counts = np.unique(limb * m + ends, return_counts=True)
        shared[keys[counts > 1] // m] = True
    bounds = np.flatnonzero(np.diff(limb)) + 1
    chosen = [_best(pairs, rows) if shared[pairs.limb[rows[0]]] else rows for rows in np.split(v, bounds)]
    sel = np.concatenate(chosen)
    return Matches(pairs.limb[sel], pairs.a[sel], pairs.b[sel], pairs.score[sel])


def _best(pairs: LimbPairs, rows: np.ndarray) -> np.ndarray:
    """Rows (pair indices of one limb) of its maximum-score matching, strongest first."""
    if rows.size == 1:
        return rows
    ua, ia = np.unique(pairs.a[rows], return_inverse=True)
    ub, ib = np.unique(pairs.b[rows], return_inverse=True)
    score = pairs.score[rows]
    # Weights > 0 so that every valid pair is worth taking; unmatched costs nothing (the
    # extra columns), and absent pairs are never worth it.
    length = pairs.length[rows]
    weight = score - min(float(score.min()), 0.0) + 1e-6 - _TIE_BREAK * length / max(float(length.max()), 1.0)
    w = np.full((ua.size, ub.size + ua.size), -1.0)
    w[:, ub.size:] = 0.0
    slot = np.full((ua.size, ub.size), -1, dtype=np.intp)
    w[ia, ib] = weight
    slot[ia, ib] = np.arange(rows.size)
    r, c = linear_sum_assignment(w, maximize=True)
    real = c < ub.size
    taken = slot[r[real], c[real]]
    taken = taken[taken >= 0]
    return rows[taken[np.argsort(-score[taken], kind="stable")]]
