"""The ``posecli`` command: a thin layer over the library (options, calls, error reports)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys

import click

from ..version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="posecli")
def main() -> None:
    """Multi-person 2D pose estimation, the OpenPose way.

    \b
    Examples:
      posecli models download                       # the default model, once
      posecli image photo.jpg                       # JSON on stdout
      posecli image photo.jpg --out poses.json --render photo_pose.jpg
      posecli image *.jpg --format openpose --out poses/
    """


def _register() -> None:
    from .image import image_command
    from .models import models_group

    main.add_command(image_command)
    main.add_command(models_group)
    # Commands that bring optional or later pieces register themselves if present.
    for module, names in (
        ("video", ("video_command",)),
        ("batch", ("batch_command",)),
        ("evaluate", ("eval_command",)),
        ("train", ("train_command", "export_command")),
        ("info", ("info_command",)),
        ("threed", ("threed_command",)),
    ):
        if importlib.util.find_spec(f"posecli.cli.{module}") is None:
            continue
        mod = importlib.import_module(f"posecli.cli.{module}")
        for name in names:
            cmd = getattr(mod, name, None)
            if cmd is not None:
                main.add_command(cmd)


_register()


def tune_malloc() -> None:
    """Keep freed memory in the process instead of returning it to the OS at once (glibc).

    The parser and preprocessing allocate the same few hundred KB arrays every frame;
    glibc hands blocks that large straight back to the OS, so each frame faults them in
    again, which costs more than the parsing on some virtual machines (parse time at 10
    people: 2.4 -> 1.7 ms in ``make bench``). RSS stays at its high-water mark instead.
    A no-op where glibc's mallopt is unavailable.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 64 * 1024 * 1024)
    mallopt(m_trim_threshold, 256 * 1024 * 1024)


def run() -> None:
    """Console entry point: no traceback reaches the user unless POSECLI_DEBUG is set.

    Exit codes: 0, 1 (an error), 2 (a usage mistake), 130 / 143 / 129 (SIGINT, SIGTERM,
    SIGHUP: finished results kept); a second signal stops at once (see ``stop_now``).
    """
    from ..io.atomic import discard_pending
    from .common import Terminated, install_signal_handlers

    tune_malloc()
    install_signal_handlers()
    code = 0
    try:
        code = _main()
    except BrokenPipeError:
        # stdout's reader (e.g. `| head`) went away: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    except KeyboardInterrupt as exc:  # a signal outside a command's own handling (e.g. while loading)
        terminated = isinstance(exc, Terminated)
        click.echo("Terminated." if terminated else "Interrupted.", err=True)
        code = 128 + int(exc.signum) if terminated else 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            click.echo(str(exc.code), err=True)
    except Exception as exc:  # a bug: say so in one line
        if os.environ.get("POSECLI_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(f"Error: unexpected {type(exc).__name__}: {first} (set POSECLI_DEBUG=1 for details)", err=True)
        code = 1
    finally:
        discard_pending()  # however the run ended, no temporary output file outlives it
    if code in (129, 130, 143):
        # Stopped by a signal: everything is written and reported. Leave at once, without
        # the interpreter's teardown: worker threads may still be inside onnxruntime (tearing
        # down under them aborts in C++: "terminate called without an active exception"),
        # and the teardown puts the default handlers back, so that another Ctrl-C would kill
        # the process by signal instead of exiting with the code.
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
            signal.signal(sig, signal.SIG_IGN)
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def _main() -> int:
    """Run the click group; returns the exit code (click's own messages printed as usual)."""
    try:
        result = main(standalone_mode=False)
    except click.Abort as exc:  # click wraps KeyboardInterrupt; give the signal back
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            raise cause from None
        click.echo("Aborted!", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0
