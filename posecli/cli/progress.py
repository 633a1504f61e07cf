"""Progress on stderr: a live bar on a terminal, plain lines every few seconds in a log.

A tqdm bar redraws one line with carriage returns and cursor codes; in a file or a pipe
(``2> run.log``, a CI log, a job scheduler) that is noise. When stderr is not a terminal,
:class:`LogProgress` writes one plain line every ``POSECLI_PROGRESS_SECONDS`` seconds
(default 10) and a last one at the end, and nothing at all for runs shorter than that.
A terminal that reports no size (0 columns: some CI runners, ``docker exec`` without a tty size)
gets the plain lines too: tqdm draws nothing in 0 columns.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time

import click

DEFAULT_LOG_INTERVAL_S = 10.0


def log_interval() -> float:
    """Seconds between progress lines in a log (``POSECLI_PROGRESS_SECONDS``, default 10)."""
    raw = os.environ.get("POSECLI_PROGRESS_SECONDS", "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_LOG_INTERVAL_S
    return value if math.isfinite(value) and value >= 0 else DEFAULT_LOG_INTERVAL_S


class LogProgress:
    """The part of tqdm's interface the commands use, as plain lines on stderr."""

    def __init__(self, total: int | None, desc: str | None = None, unit: str = "frame", disable: bool = False,
                 interval: float | None = None, initial: int = 0, **_ignored) -> None:
        self.total = total
        self.desc = desc or ""
        self.unit = unit
        self.disable = disable
        self.interval = log_interval() if interval is None else interval
        self.n = self._start = int(initial)
        self._postfix = ""
        self._t0 = self._last = time.monotonic()
        self._printed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        at_end = bool(self.total) and self.n >= self.total  # close() writes the last line, once
        if not self.disable and not at_end and now - self._last >= self.interval:
            self._last = now
            self._line(now)

    def refresh(self) -> None:
        """Nothing to redraw (tqdm's interface)."""

    def set_postfix(self, **values) -> None:
        """Values shown at the end of the next line (e.g. a loss)."""
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self.disable and self._printed and self.n:
            self._line(time.monotonic(), final=True)
        self.disable = True

    @contextlib.contextmanager
    def external_write_mode(self):
        yield

    def _line(self, now: float, final: bool = False) -> None:
        self._printed = True
        elapsed = max(now - self._t0, 1e-9)
        rate = (self.n - self._start) / elapsed
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{count} {self.unit}s"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{rate:.1f} {self.unit}s/s")
        if final:
            parts.append(f"{elapsed:.0f} s")
        elif self.total and rate > 0 and self.n < self.total:
            parts.append(f"{(self.total - self.n) / rate:.0f} s left")
        if self._postfix:
            parts.append(self._postfix)
        head = f"{self.desc}: " if self.desc else ""
        click.echo(f"{head}{', '.join(parts)}", err=True)


def progress_bar(total: int | None, quiet: bool, desc: str | None = None, unit: str = "frame", **kwargs):
    """A tqdm bar on a terminal's stderr (frames, rate, time left), plain lines in a log;
    disabled by ``quiet``."""
    stream = sys.stderr
    if stream is None or not stream.isatty() or _columns(stream) == 0:
        return LogProgress(total, desc=desc, unit=unit, disable=quiet or stream is None, **kwargs)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=stream, dynamic_ncols=True,
                mininterval=0.5, smoothing=0.1, **kwargs)


def _columns(stream) -> int:
    """The terminal's width in columns (0 when it reports no size or none can be read)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


def echo_above(bar, line: str) -> None:
    """A line on stderr that does not break a progress bar."""
    with bar.external_write_mode():
        click.echo(line, err=True)
