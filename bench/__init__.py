"""posecli benchmarks: ``python -m bench`` (``make bench``) measures speed and accuracy in one run.

The report goes to ``bench/results/report.json`` and ``bench/results/report.md``.
Figures are medians of repeated runs after warm-up runs; the report records the machine and
its load, and compares each figure with the issue's targets as a ratio. Nothing here is a
test: timings are never asserted.

Sections
--------
:mod:`bench.bench_core` holds the core sections (stage times, network, image path, parser
scaling, COCO eval on the mini set). Any other ``bench/bench_<name>.py`` module is found
and run after them. It exposes either

* ``run(report: dict) -> None``: adds its results as ``report["sections"]["<name>"]``
  (any JSON-able dict; keys it adds at the top level of ``report`` are kept too), or
* ``SECTIONS``: a list of ``(name, fn)`` with ``fn(report) -> dict``, each dict stored as
  ``report["sections"][name]``.

A section that raises is recorded as ``{"error": "..."}`` and the others still run.
``report["settings"]`` holds ``repeat``/``warmup`` (respect them so ``--quick`` is quick).

Markdown rendering is generic: in a section dict, scalars become ``- key: value`` lines,
a list of dicts becomes a table, a nested dict a sub-list; ``"title"`` and ``"notes"``
(list of strings) are shown first.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("POSECLI_SHARED", Path(__file__).resolve().parents[2] / "shared")).resolve()
MINI = SHARED / "data" / "coco-val2017-mini"


def timings(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> list[float]:
    """Seconds of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median_time(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> float:
    """Median seconds of one call of ``fn`` (see :func:`timings`)."""
    return statistics.median(timings(fn, repeat, warmup))


def paired_times(fns: dict[str, Callable[[], object]], repeat: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each of several functions, run interleaved (A B A B ...): the same
    measurement ``runtime='auto'`` makes (:func:`posecli.network.backends.choice.measure`).

    Interleaving makes the ratios between them robust to the machine's load changing during
    the run.
    """
    from posecli.network.backends.choice import measure

    return measure(fns, warmup=warmup, rounds=repeat)


def ms(seconds: float, nd: int = 2) -> float:
    """Seconds -> milliseconds, rounded."""
    return round(1000.0 * seconds, nd)


def settings(report: dict) -> tuple[int, int]:
    """``(repeat, warmup)`` from the report's settings."""
    s = report.get("settings", {})
    return int(s.get("repeat", 7)), int(s.get("warmup", 2))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def looping_tcp_stream(clip: Path) -> tuple[str, subprocess.Popen]:
    """FFmpeg serving ``clip`` in a loop, at its own rate, as MPEG-TS on a free TCP port of
    127.0.0.1: ``(url, process)``; the caller kills the process."""
    url = f"tcp://127.0.0.1:{free_port()}"
    server = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(clip),
                               "-c", "copy", "-f", "mpegts", f"{url}?listen=1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return url, server
