"""Options and helpers shared by the CLI commands: estimator settings and error reporting."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
from dataclasses import fields

import click

DEVICE_CHOICE = click.Choice(["auto", "cpu", "cuda", "tensorrt"])
PRECISION_CHOICE = click.Choice(["auto", "fp32", "int8", "fp16"])
FORMAT_CHOICE = click.Choice(["posecli", "openpose", "coco"])


def say(message: str, *, quiet: bool = False) -> None:
    """A line of information on stderr (stdout is kept for results)."""
    if not quiet:
        click.echo(message, err=True)


def report_error(error: Exception) -> None:
    """``Error: <file>: <what is wrong>`` on stderr, for errors that do not stop the run."""
    click.echo(f"Error: {error}", err=True)


def fail(error: Exception) -> "click.ClickException":
    """A ClickException (exit 1, ``Error: ...``) from a library error."""
    return click.ClickException(str(error))


def parse_scales(value: str | None) -> tuple[float, ...] | None:
    """``--scales`` as numbers; None when not given (the mode decides)."""
    if value is None:
        return None
    try:
        scales = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of numbers") from None
    if not scales or not all(math.isfinite(s) and s > 0 for s in scales):
        raise click.BadParameter("scales must be positive numbers, e.g. 1,0.75,0.5")
    return scales


def parse_parser_options(values: tuple[str, ...]) -> dict:
    """``-P key=value`` pairs -> ParserConfig overrides, checked against its fields."""
    from ..parser import ParserConfig

    known = {f.name: f for f in fields(ParserConfig)}
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            names = ", ".join(sorted(known))
            raise click.BadParameter(f"'{item}': expected KEY=VALUE with KEY one of: {names}", param_hint="-P")
        default = getattr(ParserConfig(), key)
        try:
            if isinstance(default, bool):
                value = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                value = int(raw)
            elif isinstance(default, float):
                value = float(raw)
            else:
                value = raw
        except ValueError:
            raise click.BadParameter(f"'{item}': {raw!r} is not a valid {type(default).__name__}", param_hint="-P") from None
        out[key] = value
    return out


def estimator_options(func):
    """Model, device, precision, preprocessing and parser options."""
    options = [
        click.option("--model", "-m", default=None, metavar="NAME|PATH",
                     help="Model name in the store or path to an ONNX file [default: human-pose-estimation-0001]."),
        click.option("--profile", default=None, metavar="NAME",
                     help="Skeleton profile (coco18, body25) for an ONNX model without posecli metadata."),
        click.option("--device", type=DEVICE_CHOICE, default="auto", show_default=True,
                     help="auto uses CUDA when it loads, else the CPU."),
        click.option("--precision", type=PRECISION_CHOICE, default="auto", show_default=True,
                     help="auto picks INT8 on the CPU when the model has it."),
        click.option("--height", type=click.IntRange(16, 4096), default=None,
                     help="Network input height [default: the model's]."),
        click.option("--scales", default=None, metavar="S1,S2,..",
                     help="Average maps over these multiples of the height, e.g. 1,0.75,0.5 [default: 1]."),
        click.option("--flip/--no-flip", default=None,
                     help="Also average with the mirrored image [default: the mode's]."),
        click.option("--zoom/--no-zoom", default=None,
                     help="Look again at small people, cropped at the size the network sees best "
                          "(one more batched network run) [default: the mode's]."),
        click.option("--parser", "parser_preset", default="default", show_default=True,
                     type=click.Choice(["default", "openpose", "lightweight", "cmu-python"]),
                     help="Parser preset (see README)."),
        click.option("--parser-option", "-P", "parser_options", multiple=True, metavar="KEY=VALUE",
                     help="Override one parser setting, e.g. -P min_parts=4 (repeatable)."),
        click.option("--threads", type=click.IntRange(1, 256), default=None,
                     help="CPU threads for the network [default: all cores]."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


MODE_HELP = {
    "fast": "video needs real time on a CPU",
    "balanced": "folders of photos and videos: small people found at a modest cost",
    "accurate": "a photo is worth the time",
}


def mode_option(default: str):
    """``--mode fast|balanced|accurate`` with this command's default, said in --help."""
    from ..inference.modes import MODES

    ladder = "; ".join(f"{m.name}: {m.summary}" for m in MODES.values())
    return click.option(
        "--mode", type=click.Choice(list(MODES)), default=default, show_default=True,
        help=f"Speed/accuracy setting ({ladder}). {default} by default here: {MODE_HELP[default]}. "
             "--height, --scales, --flip and --zoom override it.")


def estimator_kwargs(model, profile, device, precision, height, scales, flip, parser_preset, parser_options,
                     threads, zoom=None, mode=None) -> dict:
    """PoseEstimator keyword arguments from the options of :func:`estimator_options` and
    :func:`mode_option` (checked and parsed; plain values, so they can travel to other processes)."""
    return dict(
        mode=mode,
        zoom=zoom,
        model=model,
        device=device,
        precision=precision,
        profile=profile,
        parser=parser_preset,
        parser_options=parse_parser_options(parser_options),
        height=height,
        scales=parse_scales(scales),
        flip=flip,
        threads=threads,
    )


def build_estimator(**options):
    """A PoseEstimator from the options of :func:`estimator_options`."""
    from ..inference.estimator import PoseEstimator

    kwargs = estimator_kwargs(**options)
    return PoseEstimator(kwargs.pop("model"), **kwargs)


EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops like Ctrl-C."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` while the block runs (main thread only)."""

    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test runner's worker)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class SafeInterrupts:
    """Ctrl-C (SIGINT) and SIGTERM held until the command reaches a safe point.

    An exception raised by a signal handler can land anywhere: between creating a
    temporary file and the code that cleans it up, inside a progress bar's constructor.
    The handlers only record the signal; :meth:`check`, called between frames and between
    inputs, raises it (``KeyboardInterrupt`` or :class:`Terminated`) where every cleanup
    is in place. A second signal raises at once, as an escape hatch.
    """

    def __init__(self) -> None:
        self.pending: KeyboardInterrupt | None = None

    def _handler(self, signum, frame) -> None:
        if self.pending is not None:
            raise self.pending  # asked twice: stop now
        self.pending = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def check(self, *_) -> None:
        """Raise the recorded interrupt, if any (accepts and ignores callback arguments)."""
        if self.pending is not None:
            raise self.pending


@contextlib.contextmanager
def safe_interrupts():
    """Hold SIGINT and SIGTERM for :meth:`SafeInterrupts.check` while the block runs."""
    state = SafeInterrupts()
    try:
        previous = {sig: signal.signal(sig, state._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals as they are
        yield state
        return
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def quiet_ffmpeg() -> None:
    """Keep FFmpeg's own log lines off stderr: posecli reports decoding problems itself.

    Set OPENCV_FFMPEG_LOGLEVEL (e.g. 32) in the environment to see them again.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def progress_bar(total: int | None, quiet: bool, desc: str | None = None, unit: str = "frame", **kwargs):
    """A tqdm bar on stderr (frames, rate, time left); disabled by ``quiet``."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, smoothing=0.1, **kwargs)


def default_batch_size(estimator) -> int:
    """Frames per network run for the device the estimator's model runs on."""
    return estimator.model.default_batch_size


def interrupted_exit(exc: KeyboardInterrupt) -> "click.exceptions.Exit":
    return click.exceptions.Exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
