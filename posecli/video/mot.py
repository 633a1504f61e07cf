"""Tracking metrics against ground truth: CLEAR MOT (MOTA, id switches, fragmentation)
and identity scores (IDF1), for people given as ids and a similarity matrix per frame.

CLEAR MOT (Bernardin and Stiefelhagen, 2008), frame by frame: a ground-truth person keeps
the hypothesis it was matched to last while their similarity stays at least
``min_similarity``; the others are paired by optimal assignment over the pairs at least
that similar. Unmatched ground truth are misses (FN), unmatched hypotheses false
positives (FP); a ground-truth person matched to another id than last time is an id switch;
a ground-truth trajectory tracked, then missed, then tracked again is one fragmentation.
MOTA = 1 - (FN + FP + IDSW) / ground-truth detections.

Identity scores (Ristani et al., 2016): every ground-truth id is paired with at most one
hypothesis id for the whole video (optimal assignment maximising the frames in which the
two are at least ``min_similarity`` alike); IDTP counts those frames, and
IDF1 = 2 IDTP / (ground-truth detections + hypothesis detections).

Ground-truth people marked ``ignore`` (e.g. mostly hidden) count neither way: a
hypothesis matched to one is not a false positive, missing one is not a miss.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment


class MotAccumulator:
    """Add frames with :meth:`update`; read the scores with :meth:`summary`."""

    def __init__(self, min_similarity: float = 0.5):
        if not 0.0 < min_similarity <= 1.0:
            raise ValueError(f"min_similarity={min_similarity!r}: must be in (0, 1]")
        self.min_similarity = float(min_similarity)
        self.frames = 0
        self.gt_dets = 0
        self.hyp_dets = 0
        self.matches = 0
        self.fp = 0
        self.fn = 0
        self.switches = 0
        self.fragmentations = 0
        self._sim_sum = 0.0
        self._last: dict[Hashable, Hashable] = {}  # gt id -> hypothesis id it was matched to last
        self._state: dict[Hashable, str] = {}  # gt id -> "tracked" | "lost" (after being tracked)
        self._co: dict[tuple[Hashable, Hashable], int] = defaultdict(int)
        self._gt_ids: set = set()
        self._hyp_ids: set = set()

    def update(self, gt_ids: Sequence[Hashable], hyp_ids: Sequence[Hashable], similarity,
               ignore: Sequence[bool] | None = None) -> dict[Hashable, Hashable]:
        """One frame: G ground-truth ids, H hypothesis ids, (G, H) ``similarity`` (higher is
        more alike). Returns the frame's matches ``{gt id: hypothesis id}``."""
        sim = np.asarray(similarity, dtype=np.float64).reshape(len(gt_ids), len(hyp_ids))
        if len(set(gt_ids)) != len(gt_ids) or len(set(hyp_ids)) != len(hyp_ids):
            raise ValueError("ids must be unique within a frame")
        ign = np.zeros(len(gt_ids), bool) if ignore is None else np.asarray(ignore, bool)
        ok = np.isfinite(sim) & (sim >= self.min_similarity)
        self.frames += 1
        # 1. Keep last frame's pairs that are still alike.
        col = {h: j for j, h in enumerate(hyp_ids)}
        pairs: dict[int, int] = {}
        for i, g in enumerate(gt_ids):
            j = col.get(self._last.get(g))
            if j is not None and ok[i, j] and j not in pairs.values():
                pairs[i] = j
        # 2. Optimal assignment of the rest.
        rows = [i for i in range(len(gt_ids)) if i not in pairs]
        cols = [j for j in range(len(hyp_ids)) if j not in pairs.values()]
        if rows and cols:
            sub = np.where(ok[np.ix_(rows, cols)], sim[np.ix_(rows, cols)], -1.0)
            for r, c in zip(*linear_sum_assignment(sub, maximize=True)):
                if sub[r, c] >= 0:
                    pairs[rows[r]] = cols[c]
        # 3. Count.
        matched_hyp = set(pairs.values())
        on_ignored = {j for i, j in pairs.items() if ign[i]}
        counted_hyp = [j for j in range(len(hyp_ids)) if j not in on_ignored]
        self.hyp_dets += len(counted_hyp)
        self.fp += sum(1 for j in counted_hyp if j not in matched_hyp)
        out = {}
        for i, g in enumerate(gt_ids):
            j = pairs.get(i)
            if j is not None:
                h = hyp_ids[j]
                out[g] = h
                if g in self._last and self._last[g] != h and not ign[i]:
                    self.switches += 1
                self._last[g] = h
            if ign[i]:
                continue
            self.gt_dets += 1
            self._gt_ids.add(g)
            if j is None:
                self.fn += 1
                if self._state.get(g) == "tracked":
                    self._state[g] = "lost"
                continue
            self.matches += 1
            self._sim_sum += float(sim[i, j])
            if self._state.get(g) == "lost":
                self.fragmentations += 1
            self._state[g] = "tracked"
        # 4. Identity co-occurrence: every alike pair, whatever this frame's matching.
        for j in counted_hyp:
            self._hyp_ids.add(hyp_ids[j])
        for i, j in zip(*np.nonzero(ok)):
            if not ign[i] and j not in on_ignored:
                self._co[(gt_ids[i], hyp_ids[j])] += 1
        return out

    def idtp(self) -> int:
        """Frames in which ground-truth ids agree with their one paired hypothesis id."""
        if not self._co:
            return 0
        gts = sorted({g for g, _ in self._co}, key=repr)
        hyps = sorted({h for _, h in self._co}, key=repr)
        gi, hi = {g: n for n, g in enumerate(gts)}, {h: n for n, h in enumerate(hyps)}
        co = np.zeros((len(gts), len(hyps)))
        for (g, h), n in self._co.items():
            co[gi[g], hi[h]] = n
        r, c = linear_sum_assignment(co, maximize=True)
        return int(co[r, c].sum())

    def summary(self) -> dict:
        """MOTA, MOTP (mean similarity of matches), IDF1, IDP, IDR and the counts."""
        idtp = self.idtp()
        gt, hyp = self.gt_dets, self.hyp_dets
        return {
            "frames": self.frames,
            "gt_dets": gt,
            "hyp_dets": hyp,
            "gt_ids": len(self._gt_ids),
            "hyp_ids": len(self._hyp_ids),
            "matches": self.matches,
            "fp": self.fp,
            "fn": self.fn,
            "id_switches": self.switches,
            "fragmentations": self.fragmentations,
            "mota": 1.0 - (self.fn + self.fp + self.switches) / gt if gt else float("nan"),
            "motp": self._sim_sum / self.matches if self.matches else float("nan"),
            "idf1": 2.0 * idtp / (gt + hyp) if gt + hyp else float("nan"),
            "idp": idtp / hyp if hyp else float("nan"),
            "idr": idtp / gt if gt else float("nan"),
        }


def track_statistics(frames: Sequence[Sequence[Hashable | None]], times: Sequence[float]) -> dict:
    """What can be said of tracks without ground truth: ``frames`` holds each frame's
    person ids (None: no id), ``times`` each frame's time in seconds.

    A track's length is the time from its first to its last frame plus one frame. Returns
    the ids handed out, ids per minute, the share of all people (ids or not) in tracks of
    at least 1 s and 2 s, and track length percentiles (seconds)."""
    if len(frames) != len(times):
        raise ValueError("frames and times must have the same length")
    if not frames:
        return {"ids": 0, "people": 0}
    first: dict = {}
    last: dict = {}
    count: dict = defaultdict(int)
    people = 0
    for ids, t in zip(frames, times):
        for i in ids:
            people += 1
            if i is None:
                continue
            first.setdefault(i, t)
            last[i] = t
            count[i] += 1
    span = float(times[-1] - times[0])
    dt = span / (len(times) - 1) if len(times) > 1 else 0.0
    length = {i: last[i] - first[i] + dt for i in first}
    lengths = np.array(sorted(length.values())) if length else np.zeros(0)
    minutes = (span + dt) / 60.0
    out = {
        "seconds": round(span + dt, 3),
        "people": people,
        "ids": len(first),
        "ids_per_minute": len(first) / minutes if minutes > 0 else float("nan"),
        "without_id": people - sum(count.values()),
        "in_tracks_1s": sum(n for i, n in count.items() if length[i] >= 1.0 - 1e-9) / people if people else 0.0,
        "in_tracks_2s": sum(n for i, n in count.items() if length[i] >= 2.0 - 1e-9) / people if people else 0.0,
    }
    for q in (10, 50, 90):
        out[f"track_s_p{q}"] = float(np.percentile(lengths, q)) if len(lengths) else float("nan")
    return out
