"""``posecli image``: people in photos, as JSON and annotated images."""

from __future__ import annotations

import time
from pathlib import Path

import click
import cv2

from ..errors import OutputError, PoseError
from ..formats.records import openpose_filename
from ..formats.render import Renderer
from ..formats.writers import ResultWriter
from ..io.atomic import AtomicFile, check_writable
from .common import (
    FORMAT_CHOICE,
    Terminated,
    build_estimator,
    estimator_options,
    fail,
    interrupted_exit,
    mode_option,
    report_error,
    safe_interrupts,
    say,
)

EPILOG = """\b
Examples:
  posecli image photo.jpg                                # JSON on stdout
  posecli image photo.jpg --out photo.json --render photo_pose.jpg
  posecli image a.jpg b.jpg --format openpose --out poses/
  posecli image photo.jpg --format coco --scales 1,0.75 --flip
  posecli image photo.jpg --mode fast                    # one pass, no zoom-in: ~5x faster
"""


@click.command("image", epilog=EPILOG)
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(), default=None,
              help="JSON file, or a directory for one file per photo [default: stdout].")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="posecli", show_default=True,
              help="posecli (named keypoints), openpose (CMU 1.3 JSON) or coco (keypoint results).")
@click.option("--render", "-r", type=click.Path(), default=None,
              help="Annotated image file (one photo) or directory (several).")
@click.option("--verbose", "-v", is_flag=True, help="Say which model and provider ran, and the time per photo.")
@estimator_options
@mode_option("accurate")
def image_command(photos, out, fmt, render, verbose, **est_opts):
    """Find people in PHOTOS and write their skeletons.

    Keypoints are in image pixels; missing ones are null (posecli format).
    """
    # Strings first: a trailing slash ("--out poses/") asks for a directory, and Path drops it.
    out_is_dir = out is not None and (_names_dir(out) or (fmt == "openpose" and len(photos) > 1))
    render_is_dir = render is not None and (_names_dir(render) or len(photos) > 1)
    out = None if out is None else Path(out)
    render = None if render is None else Path(render)
    _check_output(out, out_is_dir)
    _check_output(render, render_is_dir)
    if fmt == "openpose" and out is None and len(photos) > 1:
        raise click.UsageError("--format openpose writes one file per photo: give --out a directory")

    try:
        est = build_estimator(**est_opts)
    except PoseError as exc:
        raise fail(exc) from None
    if verbose:
        info = est.model.info
        say(f"model: {est.model.path} ({info.name}, {info.precision}, skeleton {info.skeleton.name})")
        say(f"provider: {est.model.provider}; mode {est.mode}: input height {est.height}, "
            f"scales {list(est.scales)}, flip {est.flip}, zoom-in {'on' if est.zoom else 'off'}")

    renderer = Renderer()
    model_name = est.model.info.name
    writer = None if out_is_dir else ResultWriter(fmt, out, model=model_name, skeleton=est.skeleton)
    failed = done = 0
    with safe_interrupts() as interrupts:  # Ctrl-C and SIGTERM stop between photos
        try:
            for photo in photos:
                interrupts.check()
                try:
                    t0 = time.perf_counter()
                    # without --render only the network sees the pixels: huge JPEGs decode reduced
                    frame, image = est.estimate_file(photo, keep_image=render is not None)
                    elapsed = time.perf_counter() - t0
                    if out_is_dir:
                        name = openpose_filename(photo) if fmt == "openpose" else f"{photo.stem}.json"
                        one = ResultWriter(fmt, out / name, model=model_name, skeleton=est.skeleton)
                        try:
                            one.add(frame)
                            one.close()
                        except BaseException:
                            one.discard()  # no temporary file left behind
                            raise
                    else:
                        writer.add(frame)
                    if render is not None:
                        target = render / f"{photo.stem}_rendered.jpg" if render_is_dir else render
                        _write_image(target, renderer(image, frame.people))
                    done += 1
                    if verbose:
                        say(f"{photo}: {len(frame.people)} people, {elapsed * 1000:.0f} ms")
                except OutputError:
                    raise  # disk full, output gone: stop rather than fail every photo after it
                except PoseError as exc:
                    failed += 1
                    report_error(exc)
            if writer is not None:
                if writer.count:
                    writer.close()
                else:
                    writer.discard()  # nothing succeeded: leave no output at all
        except BaseException as exc:
            if writer is not None:
                writer.discard()  # an existing output is replaced only by a complete one
            if isinstance(exc, PoseError):
                raise fail(exc) from None
            if isinstance(exc, KeyboardInterrupt):
                what = "Terminated" if isinstance(exc, Terminated) else "Interrupted"
                kept = f"{done} of {len(photos)} photos written to {out}" if out_is_dir else f"nothing written to {out}"
                say(f"{what}: {kept}." if out is not None else f"{what}.")
                raise interrupted_exit(exc) from None
            raise
    if failed:
        raise click.exceptions.Exit(1)


def _names_dir(value: str) -> bool:
    """True when an output option names a directory: an existing one, or ending in a separator."""
    return value.endswith(("/", "\\")) or Path(value).is_dir()


def _check_output(path: Path | None, is_dir: bool) -> None:
    """Fail before any work when an output cannot be written."""
    if path is None:
        return
    try:
        check_writable(path, is_dir)
    except OutputError as exc:
        raise fail(exc) from None


def _write_image(path: Path, image) -> None:
    """Encode by the file's extension and write atomically."""
    ext = path.suffix.lower() or ".jpg"
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise OutputError(f"cannot encode an image as '{ext}'", path=path)
    with AtomicFile(path, "wb") as f:
        f.write(buf.tobytes())
