"""Options and helpers shared by the CLI commands: estimator settings and error reporting."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import fields

import click

from ..formats.records import FORMATS
from ..inference.options import MAX_INPUT_HEIGHT
from ..network.backends import RUNTIMES
from ..network.session import DEVICES, PRECISIONS
from .progress import progress_bar  # noqa: F401  (the commands import it from here)

DEVICE_CHOICE = click.Choice(list(DEVICES))
PRECISION_CHOICE = click.Choice(list(PRECISIONS))
RUNTIME_CHOICE = click.Choice(list(RUNTIMES))
RUNTIME_HELP = ("auto: on the CPU the faster of OpenVINO and onnxruntime, measured once per machine and "
                "model and remembered in the store; GPUs run on onnxruntime.")
FORMAT_CHOICE = click.Choice(list(FORMATS))


def say(message: str, *, quiet: bool = False) -> None:
    """A line of information on stderr (stdout is kept for results); a URL's credentials hidden."""
    from ..io.urls import redact

    if not quiet:
        click.echo(redact(message), err=True)


def report_error(error: Exception) -> None:
    """``Error: <file>: <what is wrong>`` on stderr, for errors that do not stop the run."""
    from .wording import error_text

    click.echo(f"Error: {error_text(error)}", err=True)


def fail(error: Exception) -> "click.ClickException":
    """A ClickException (exit 1, ``Error: ...``) from a library error, parameters as flags."""
    from .wording import error_text

    return click.ClickException(error_text(error))


class FiniteFloat(click.ParamType):
    """A float option that must be finite (no nan, inf) and within [min, max] (``min_open``:
    above ``min``, as durations and rates are)."""

    name = "float"

    def __init__(self, min: float | None = None, max: float | None = None, min_open: bool = False) -> None:
        self.min, self.max, self.min_open = min, max, min_open

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        low = self.min is not None and (number <= self.min if self.min_open else number < self.min)
        if low or self.max is not None and number > self.max:
            span = f"above {self.min} up to {self.max}" if self.min_open else f"in the range {self.min}-{self.max}"
            self.fail(f"{value!r} is not {span}", param, ctx)
        return number


class Scales(click.ParamType):
    """``--scales 1,0.75,0.5`` as a tuple of numbers (their range is the library's to check)."""

    name = "scales"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            scales = tuple(float(v) for v in value.split(",") if v.strip())
        except ValueError:
            self.fail(f"'{value}' is not a comma-separated list of numbers", param, ctx)
        return scales


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
#: Words some settings take besides numbers: (field, word) -> value.
_WORDS = {("upsample", "stride"): "stride", ("max_age", "none"): None, ("max_age", ""): None}


def parse_key_values(items: tuple[str, ...], config_class, hint: str) -> dict:
    """``KEY=VALUE`` pairs (``-P``, ``-T``) -> field overrides of the dataclass ``config_class``,
    each converted to its field's type (a usage error names the pair); the config checks
    the values themselves."""
    defaults = config_class()
    known = {f.name for f in fields(config_class)}
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise click.BadParameter(f"'{item}': expected KEY=VALUE with KEY one of: {', '.join(sorted(known))}",
                                     param_hint=hint)
        word = raw.strip().lower()
        if (key, word) in _WORDS:
            out[key] = _WORDS[key, word]
            continue
        default = getattr(defaults, key)
        kind = type(default) if default is not None else int
        try:
            if kind is bool:
                if word not in _TRUE + _FALSE:
                    raise ValueError
                out[key] = word in _TRUE
            else:
                out[key] = kind(raw)
        except ValueError:
            words = " or ".join(repr(w) for k, w in _WORDS if k == key and w)
            what = {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "valid")
            raise click.BadParameter(f"'{item}': {raw!r} is not {what}{' or ' + words if words else ''}",
                                     param_hint=hint) from None
    return out


def as_click_error(error: Exception) -> "click.ClickException":
    """A library error, worded with flags: settings the library refuses
    (:class:`~posecli.errors.ConfigError`) and clashing outputs as usage mistakes (exit 2),
    the rest as ``Error: ...`` (exit 1)."""
    from ..errors import ConfigError, OutputConflict
    from .wording import error_text

    if isinstance(error, (ConfigError, OutputConflict)):
        return click.UsageError(error_text(error))
    return fail(error)


@contextlib.contextmanager
def usage_errors():
    """Library errors raised in the block as :func:`as_click_error` words them."""
    from ..errors import PoseError

    try:
        yield
    except PoseError as exc:
        raise as_click_error(exc) from None


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
        click.option("--height", type=click.IntRange(16, MAX_INPUT_HEIGHT), default=None,
                     help="Network input height [default: the model's]."),
        click.option("--scales", type=Scales(), default=None, metavar="S1,S2,..",
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
        click.option("--runtime", type=RUNTIME_CHOICE, default="auto", show_default=True, help=RUNTIME_HELP),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


VIDEO_MODE = "fast"  # posecli video's default mode, also batch's for videos
MODE_HELP = {
    "fastest": "dropping frames is the alternative",
    "fast": "video needs real time on a CPU",
    "balanced": "folders of photos: small people found at a modest cost",
    "accurate": "a photo is worth the time",
}


def mode_option(default: str, why: str | None = None, note: str = "", live: str | None = None):
    """``--mode fastest|fast|balanced|accurate`` with this command's default, said in --help (``why``:
    this command's reason for it, else the mode's usual one; ``note``: a sentence more, e.g. an
    exception to the default; ``live``: another default for cameras and streams, the option is
    then None unless given)."""
    from ..inference.modes import MODES

    ladder = "; ".join(f"{m.name}: {m.summary}" for m in MODES.values())
    chosen = f"{default} by default here: {why or MODE_HELP[default]}"
    if live is not None:
        chosen = f"{live} by default for cameras and streams ({MODE_HELP[live]}), {default} for files and folders"
    return click.option(
        "--mode", type=click.Choice(list(MODES)), default=None if live else default, show_default=live is None,
        help=f"Speed/accuracy setting ({ladder}). {chosen}. {note}--height, --scales, --flip and --zoom override it.")


def estimator_settings(model, profile, device, precision, height, scales, flip, parser_preset, parser_options,
                       threads, runtime="auto", zoom=None, mode=None, max_people=None, part_candidates=False,
                       keep_maps=False):
    """The :class:`~posecli.inference.options.EstimatorOptions` that the options of
    :func:`estimator_options`, :func:`mode_option` and the people options ask for."""
    from ..inference.options import EstimatorOptions
    from ..parser import ParserConfig

    overrides = parse_key_values(parser_options, ParserConfig, "-P")
    with usage_errors():
        return EstimatorOptions(model=model, profile=profile, device=device, precision=precision, runtime=runtime,
                                threads=threads, mode=mode, height=height, scales=scales, flip=flip, zoom=zoom,
                                parser=parser_preset, parser_options=overrides, max_people=max_people,
                                part_candidates=part_candidates, keep_maps=keep_maps)


VERBOSE_HELP = "Say which model, provider and runtime ran (and why), and how fast."


def describe_setup(est) -> list[str]:
    """``--verbose`` lines before the work: model, provider and settings, runtime and why."""
    from .wording import as_flags

    info = est.model.info
    return [f"model: {est.model.path} ({info.name}, {info.precision}, skeleton {info.skeleton.name})",
            (f"provider: {est.model.provider}; mode {est.mode}: input height {est.height}, "
             f"scales {list(est.scales)}, flip {est.flip}, zoom-in {'on' if est.zoom else 'off'}"),
            f"runtime: {as_flags(est.model.runtime_note or est.model.runtime)}"]


def describe_done(est, count: int, unit: str, started: float) -> list[str]:
    """``--verbose`` lines after the work: ``count`` ``unit`` (frames, inputs) since
    ``started`` (``time.monotonic()``), and the OpenVINO networks that ran, if any."""
    seconds = time.monotonic() - started
    lines = [f"{count} {unit} in {seconds:.1f} s ({count / max(seconds, 1e-9):.1f} {unit}/s)"]
    compiled = est.model.describe().get("openvino", {}).get("compiled", [])
    if compiled:
        shapes = ", ".join(f"{'x'.join(map(str, c['shape'])) if isinstance(c['shape'], list) else c['shape']} "
                           f"({c['hint'].lower()}, {c['streams']} stream{'s' if c['streams'] != 1 else ''})"
                           for c in compiled)
        lines.append(f"OpenVINO networks compiled: {shapes}")
    return lines


EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP), raised in the main thread so that it stops like Ctrl-C."""

    signum = signal.SIGTERM


class HungUp(Terminated):
    """SIGHUP: the terminal went away; stops like SIGTERM, exit 129."""

    signum = signal.SIGHUP


_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


# The same stop signal again within this many seconds is the same request: GNU `timeout`
# (and `kill -INT -- -PGID`) delivers one stop both to the process and to its group, which the
# process may see as two signals microseconds apart, or, its main thread busy on a loaded
# machine, handled a second or more apart. A person's second Ctrl-C, when the first stop
# hangs, comes later.
SAME_REQUEST_S = 2.0


class _Signals:
    """Process-wide: the first stop request's signal and time (``time.monotonic()``; None until
    one arrives), and the block holding them (if any)."""

    first: tuple[int, float] | None = None
    holder: SafeInterrupts | None = None


def _exception_for(signum: int) -> KeyboardInterrupt:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return HungUp() if signum == getattr(signal, "SIGHUP", None) else Terminated()


def _on_signal(signum, frame) -> None:
    """The first stop signal raises (or is held for a safe point); a second stops at once.
    The first one delivered again (to the process and to its group) is not a second.

    A handler can run inside another one (between two of its bytecodes), so the first request
    is recorded by one store before anything else: a repeat that lands before the store is
    taken for the first request too, never for a second one."""
    first = _Signals.first
    if first is None:
        _Signals.first = (signum, time.monotonic())
    elif first[0] == signum and time.monotonic() - first[1] < SAME_REQUEST_S:
        return  # the first request delivered again
    else:
        stop_now(signum)
    exc = _exception_for(signum)
    if _Signals.holder is not None:
        from ..io.streams import wake_streams

        _Signals.holder.pending = exc
        wake_streams(exc)  # a wait on a FIFO, a pipe or a stalled source is a safe point: it raises there
        return
    raise exc


def stop_now(signum: int) -> None:
    """Exit 128 + ``signum`` at once: temporary outputs removed, nothing else run.

    For a second Ctrl-C or SIGTERM while the first one's cleanup runs: no Python unwinding
    and no interpreter shutdown, which would tear down onnxruntime's threads while they work
    (C++ ``std::terminate``: "terminate called without an active exception", exit 134).
    Finished outputs are already in place; unfinished ones are removed.
    """
    from ..io.atomic import discard_pending

    try:
        discard_pending()
    finally:
        try:
            os.write(2, b"\nStopped at once (second signal); unfinished outputs removed.\n")
        except OSError:
            pass
        os._exit(128 + int(signum))


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt / :class:`Terminated` /
    :class:`HungUp` once; a second signal stops at once (:func:`stop_now`). Main thread only."""
    _Signals.first = None
    for sig in _STOP_SIGNALS:
        try:
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # not the main thread
            return


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM and SIGHUP into :class:`Terminated` while the block runs (main thread only);
    a second signal stops at once."""
    try:
        previous = {sig: signal.signal(sig, _on_signal) for sig in _STOP_SIGNALS if sig != signal.SIGINT}
    except ValueError:  # not the main thread (e.g. called from a test runner's worker)
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class SafeInterrupts:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP held until the command reaches a safe point.

    An exception raised by a signal handler can land anywhere: between creating a
    temporary file and the code that cleans it up, inside a progress bar's constructor.
    The handlers only record the signal; :meth:`check`, called between frames and between
    inputs, raises it (``KeyboardInterrupt`` or :class:`Terminated`) where every cleanup
    is in place. A second signal, while the first is pending or being cleaned up after,
    stops the process at once with the same exit code (:func:`stop_now`).
    """

    def __init__(self) -> None:
        self.pending: KeyboardInterrupt | None = None

    def check(self, *_) -> None:
        """Raise the recorded interrupt, if any (accepts and ignores callback arguments)."""
        if self.pending is not None:
            raise self.pending


@contextlib.contextmanager
def safe_interrupts():
    """Hold SIGINT, SIGTERM and SIGHUP for :meth:`SafeInterrupts.check` while the block runs."""
    from ..io.streams import clear_stop

    state = SafeInterrupts()
    clear_stop()  # a stop held by an earlier command (in this process) is not this one's
    try:
        previous = {sig: signal.signal(sig, _on_signal) for sig in _STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals as they are
        yield state
        return
    outer, _Signals.holder = _Signals.holder, state
    try:
        yield state
    finally:
        _Signals.holder = outer
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def batch_size_help(what: str) -> str:
    """``--batch-size`` help: ``what``, then the defaults by device, read from the one table
    (:data:`posecli.network.session.DEFAULT_BATCH_SIZE`)."""
    from ..network.session import DEFAULT_BATCH_SIZE

    by_device = ", ".join(f"{device} {size}" for device, size in DEFAULT_BATCH_SIZE.items())
    return f"{what} [default by device: {by_device}]."


class CommandReport:
    """The ``with`` block around a command's library call: its progress bars (:meth:`bars`)
    closed however it ends, library errors worded by :func:`as_click_error`, and Ctrl-C,
    SIGTERM or SIGHUP the exit they ask for, after :meth:`interrupted` says what was kept."""

    def bars(self) -> tuple:
        return ()

    def interrupted(self, stopped: str) -> None:
        """Say what was kept; ``stopped`` is ``Interrupted`` or ``Terminated``."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> None:
        from ..errors import PoseError

        for bar in self.bars():
            if bar is not None:
                bar.close()
        if isinstance(exc, PoseError):
            raise as_click_error(exc) from None
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted("Terminated" if isinstance(exc, Terminated) else "Interrupted")
            raise interrupted_exit(exc) from None


def interrupted_exit(exc: KeyboardInterrupt) -> "click.exceptions.Exit":
    """Exit 130 (Ctrl-C), 143 (SIGTERM) or 129 (SIGHUP)."""
    return click.exceptions.Exit(128 + int(exc.signum) if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
