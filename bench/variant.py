"""One estimator setting scored on the mean over network heights: the sweeps of docs/accuracy.md.

``python -m bench.variant --mode accurate -P min_parts=3 -Z below=100`` runs ``posecli
eval``'s code on the sets of :mod:`bench.accuracy_sets` at each of ``--heights`` (240, 248,
256, 264, 272) and prints one line: each set's AP averaged over the heights, train80's AP75
and train80 at 256 alone. ``-P`` sets a parser option, ``-Z`` a zoom-in option
(:class:`~posecli.inference.zoom.ZoomConfig`), both repeatable; values are read as JSON
(numbers, true/false), else taken as text. Single figures on sets this small move by about
0.02 with rounding alone, which is why choices rest on this mean. With
``POSECLI_MAP_CACHE=<folder>`` repeated network calls are answered from disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from posecli.errors import PoseError
from posecli.inference.options import MAX_INPUT_HEIGHT
from posecli.inference.zoom import ZoomConfig

HEIGHTS = (240, 248, 256, 264, 272)


def _pairs(items: list[str], flag: str, ap: argparse.ArgumentParser) -> dict:
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            ap.error(f"{flag} {item}: expected KEY=VALUE")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def _heights(text: str) -> tuple[int, ...]:
    try:
        heights = tuple(int(h) for h in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected heights like 240,256,272") from None
    if not heights or min(heights) < 16 or max(heights) > MAX_INPUT_HEIGHT:
        raise argparse.ArgumentTypeError(f"{text!r}: heights from 16 to {MAX_INPUT_HEIGHT} (posecli's --height)")
    return heights


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.variant", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="accurate", help="the mode the settings change (default: accurate)")
    ap.add_argument("-P", dest="parser", action="append", default=[], metavar="KEY=VALUE", help="a parser option")
    ap.add_argument("-Z", dest="zoom", action="append", default=[], metavar="KEY=VALUE", help="a zoom-in option")
    ap.add_argument("--heights", type=_heights, default=HEIGHTS, help="network heights, comma-separated")
    args = ap.parse_args(argv)
    kwargs: dict = {"mode": args.mode}
    if args.parser:
        kwargs["parser_options"] = _pairs(args.parser, "-P", ap)
    zoom = _pairs(args.zoom, "-Z", ap)
    try:
        if zoom:
            names = {f.name for f in dataclasses.fields(ZoomConfig)}
            unknown = sorted(set(zoom) - names)
            if unknown:
                ap.error(f"-Z {unknown[0]}: not a zoom-in option (choose from {', '.join(sorted(names))})")
            kwargs["zoom"] = ZoomConfig(**zoom)
        means = score(kwargs, args.heights)
    except (PoseError, TypeError) as exc:  # a bad value: one line, not a traceback
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(" ".join(f"{k} {v:.3f}" for k, v in means.items()))
    return 0


def score(kwargs: dict, heights: tuple[int, ...]) -> dict[str, float]:
    """Set name -> AP averaged over ``heights`` (and train80's AP75, and train80 at 256 when measured)."""
    from .bench_accuracy import _scores, _scoring_model, _sets
    from .bench_core import default_precision

    scoring = _scoring_model(default_precision())
    sets = _sets()
    results = [_scores(scoring, {**kwargs, "height": h}, sets) for h in heights]
    means = {name: sum(r[name].ap for r in results) / len(results) for name in sets}
    means["train80-AP75"] = sum(r["train80"].ap75 for r in results) / len(results)
    if 256 in heights:
        means["train80@256"] = results[heights.index(256)]["train80"].ap
    return means


if __name__ == "__main__":
    sys.exit(main())
