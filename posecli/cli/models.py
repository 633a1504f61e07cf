"""``posecli models``: download, import, list and inspect the models in the store."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from ..errors import ModelError, PoseError
from ..network.store import list_models, model_path, store_dir, unlink_store_link
from .common import (
    DEVICE_CHOICE,
    PRECISION_CHOICE,
    RUNTIME_CHOICE,
    RUNTIME_HELP,
    fail,
    interrupted_exit,
    say,
    sigterm_as_interrupt,
)


@click.group("models", epilog="""\b
Examples:
  posecli models download
  posecli models import ../shared/models/human-pose-estimation-0001/FP16-INT8/
  posecli models list
  posecli models info human-pose-estimation-0001
""")
def models_group():
    """Download, import, list and inspect pose models (store: $POSECLI_MODELS; else a source checkout's
    models/store when it holds models, as make demo leaves them; else ~/.cache/posecli/models)."""


@models_group.command("download", epilog="""\b
Examples:
  posecli models download
  posecli models download --from ../shared/models/human-pose-estimation-0001/FP16-INT8/
  posecli models download --from https://mirror.example.org/omz/human-pose-estimation-0001/FP16-INT8/
""")
@click.argument("name", required=False)
@click.option("--from", "source", default=None, metavar="DIR|URL",
              help="A folder or http(s) URL holding the IR's .xml and .bin (an offline copy or a "
                   "mirror) [default: Open Model Zoo's public storage].")
@click.option("--precision", type=click.Choice(["fp32", "int8", "fp16", "all"]), default="all",
              show_default=True, help="Which ONNX models to make from the IR (as models import).")
@click.option("--force", is_flag=True, help="Convert again even if the model is already in the store.")
@click.option("--timeout", type=click.FloatRange(0, 3600, min_open=True), default=30.0, show_default=True,
              help="Seconds to wait for the server before giving up.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; say nothing on success.")
def download_command(name, source, precision, force, timeout, quiet):
    """Download a model's published OpenVINO IR, check its sha256 and import it into the store.

    NAME defaults to human-pose-estimation-0001 (Intel's Open Model Zoo, FP16-INT8 IR). An
    interrupted download resumes where it stopped when run again.
    """
    from ..network.download import download_model

    bars = _FileBars(quiet or not _stderr_is_terminal())

    def on_import(prec, target, converted):
        verb = "imported" if converted else "already imported"
        say(f"{verb} {name or 'human-pose-estimation-0001'} ({prec}): {target}", quiet=quiet)

    if not math.isfinite(timeout):
        raise click.BadParameter(f"{timeout} is not a number of seconds", param_hint="--timeout")
    precisions = ("fp32", "int8", "fp16") if precision == "all" else (precision,)
    try:
        with sigterm_as_interrupt():
            download_model(name, source, precisions=precisions, force=force, progress=bars,
                           on_import=on_import, timeout=timeout)
    except PoseError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: a partial file stays for the next run
        bars.close()
        say("Interrupted: run the same command again to resume the download.")
        raise interrupted_exit(exc) from None
    finally:
        bars.close()


class _FileBars:
    """A byte progress bar per file being fetched (none for a file already there)."""

    def __init__(self, hidden: bool) -> None:
        self.hidden = hidden
        self.bars: dict = {}

    def __call__(self, fname: str, done: int, total: int) -> None:
        from .common import progress_bar

        bar = self.bars.get(fname)
        if bar is None:
            if done >= total:  # already here and verified: nothing to show
                return
            bar = self.bars[fname] = progress_bar(total, self.hidden, desc=fname, unit="B", unit_scale=True,
                                                  unit_divisor=1024, initial=done, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


@models_group.command("import", epilog="""\b
Examples:
  posecli models import ../shared/models/human-pose-estimation-0001/FP16-INT8/
  posecli models import hpe.xml --precision all --name hpe
  posecli models import hpe.xml --precision fp16
""")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Name in the store [default: the IR's file name].")
@click.option("--precision", type=click.Choice(["fp32", "int8", "fp16", "all"]), default="all",
              show_default=True,
              help="fp32: float network; int8: keep the IR's INT8 quantization (QDQ, for CPUs); "
                   "fp16: float16 network with float32 I/O (for GPUs); all: the three.")
@click.option("--force", is_flag=True, help="Convert again even if the model is already in the store.")
@click.option("--quiet", "-q", is_flag=True, help="Say nothing on success.")
def import_command(path, name, precision, force, quiet):
    """Convert an OpenVINO IR (.xml + .bin, or their folder) into an ONNX model in the store."""
    try:
        xml = _find_ir(path)
        name = name or xml.stem
        store = store_dir()
        store.mkdir(parents=True, exist_ok=True)
        precisions = ["fp32", "int8", "fp16"] if precision == "all" else [precision]
        from ..network.importers.openvino import import_openvino_ir

        for prec in precisions:
            target = model_path(name, prec, store)
            if target.exists() and not force:
                say(f"{name} ({prec}) is already imported: {target}", quiet=quiet)
                continue
            unlink_store_link(target)  # never written through a link in the store
            import_openvino_ir(xml, target, precision=prec)
            say(f"imported {name} ({prec}): {target}", quiet=quiet)
    except PoseError as exc:
        raise fail(exc) from None
    except OSError as exc:
        raise fail(ModelError(f"cannot write the model store ({exc.strerror})", path=store_dir())) from None


def _stderr_is_terminal() -> bool:
    """Progress bars only where someone watches them (logs and pipes get the result lines)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _find_ir(path: Path) -> Path:
    if not path.exists():
        raise ModelError("no such file or directory", path=path)
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise ModelError(f"expected one OpenVINO .xml in the folder, found {len(xmls)}", path=path)
        return xmls[0]
    if path.suffix.lower() != ".xml":
        raise ModelError("not an OpenVINO IR (.xml)", path=path)
    return path


@models_group.command("list", epilog="\b\nExample:\n  posecli models list")
def list_command():
    """List the models in the store."""
    models = list_models()
    click.echo(f"store: {store_dir()}")
    if not models:
        click.echo("no models yet: posecli models download")
        return
    width = max(len(m.name) for m in models)
    for m in models:
        size = m.path.stat().st_size / 1e6
        click.echo(f"{m.name:<{width}}  {m.precision:<5}  {size:6.1f} MB  {m.path}")


@models_group.command("info", epilog="""\b
Examples:
  posecli models info human-pose-estimation-0001
  posecli models info model.onnx --profile body25 --device cpu --json
""")
@click.argument("model", required=False)
@click.option("--device", type=DEVICE_CHOICE, default="auto", show_default=True)
@click.option("--precision", type=PRECISION_CHOICE, default="auto", show_default=True,
              help="auto: the variant image, video and batch run (INT8 on the CPU when the model has it).")
@click.option("--profile", default=None, help="Skeleton profile for a model without metadata.")
@click.option("--runtime", type=RUNTIME_CHOICE, default="auto", show_default=True, help=RUNTIME_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info_command(model, device, precision, profile, runtime, as_json):
    """Describe MODEL (a store name or an ONNX path): skeleton, I/O, provider that runs it."""
    from ..network.session import PoseModel

    try:
        pm = PoseModel.load(model, device=device, precision=precision, profile=profile, runtime=runtime)
    except PoseError as exc:
        raise fail(exc) from None
    desc = pm.describe()
    if as_json:
        click.echo(json.dumps(desc, indent=2))
        return
    for key, value in desc.items():
        click.echo(f"{key + ':':<15}{value}")
