"""``posecli image``: people in photos, as JSON and annotated images."""

from __future__ import annotations

import time
from pathlib import Path

import click
import cv2
import numpy as np

from ..errors import OutputConflict, OutputError, PoseError, shown_path
from ..formats.records import result_suffix
from ..formats.writers import ResultWriter
from ..io.atomic import AtomicFile, check_writable
from ..io.images import read_alpha
from ..io.outputs import check_distinct, unique_names
from .common import (
    FORMAT_CHOICE,
    Terminated,
    build_estimator,
    describe_setup,
    estimator_kwargs,
    estimator_options,
    fail,
    interrupted_exit,
    mode_option,
    progress_bar,
    safe_interrupts,
    say,
)
from .outputs import build_renderer, maps_option, people_kwargs, people_options, render_style_options
from .progress import echo_above
from .wording import error_text

EPILOG = """\b
Examples:
  posecli image photo.jpg                                # JSON on stdout
  posecli image photo.jpg --out photo.json --render photo_pose.jpg
  posecli image a.jpg b.jpg --format openpose --out poses/
  posecli image photo.jpg --format coco --scales 1,0.75 --flip
  posecli image photo.jpg --mode fast                        # one pass, no zoom-in: ~5x faster
  posecli image photo.jpg --format csv --out photo.csv       # a row per person and keypoint
  posecli image group.jpg --max-people 1 --part-candidates   # the strongest person; every peak
  posecli image photo.jpg --render skel.png --background black --thickness 6 --min-score 0.3
  posecli image cutout.png --render cutout_pose.png --keep-alpha --boxes
  posecli image photo.jpg --write-maps maps/                 # maps/photo.npz: heatmaps and PAFs
"""

ALPHA_EXTENSIONS = (".png", ".webp", ".tif", ".tiff")


@click.command("image", epilog=EPILOG)
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path, readable=False))
@click.option("--out", "-o", type=click.Path(), default=None,
              help="JSON file, or a directory for one file per photo [default: stdout].")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="posecli", show_default=True,
              help="posecli (named keypoints), openpose (CMU 1.3 JSON), coco (keypoint results) "
                   "or csv (a row per person and keypoint).")
@click.option("--render", "-r", type=click.Path(), default=None,
              help="Annotated image file (one photo) or directory (several).")
@click.option("--keep-alpha", is_flag=True,
              help="The annotated image keeps the photo's transparency (opaque where drawn); PNG, WebP or TIFF.")
@click.option("--verbose", "-v", is_flag=True, help="Say which model and provider ran, and the time per photo.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (errors are still reported).")
@people_options
@render_style_options
@maps_option
@estimator_options
@mode_option("accurate")
def image_command(photos, out, fmt, render, keep_alpha, verbose, quiet, max_people, part_candidates, background,
                  thickness, radius, min_score, show_ids, show_boxes, maps_dir, **est_opts):
    """Find people in PHOTOS and write their skeletons.

    Keypoints are in image pixels; missing ones are null (posecli format). With --out a
    directory, two photos that would share a result name keep their extension
    (x.jpg.json, x.png.json), then get -2, -3 in the order given.
    """
    estimator_kwargs(**est_opts)  # every option checked before any work
    # Strings first: a trailing slash ("--out poses/") asks for a directory, and Path drops it.
    out_is_dir = out is not None and (_names_dir(out) or (fmt == "openpose" and len(photos) > 1))
    render_is_dir = render is not None and (_names_dir(render) or len(photos) > 1)
    out = None if out is None else Path(out)
    render = None if render is None else Path(render)
    if keep_alpha and render is None:
        raise click.UsageError("--keep-alpha is about the annotated image: add --render")
    if keep_alpha and not render_is_dir and render.suffix.lower() not in ALPHA_EXTENSIONS:
        raise click.UsageError(f"--keep-alpha needs an image format with transparency "
                               f"({', '.join(ALPHA_EXTENSIONS)}), not '{render.suffix or render.name}'")
    renderer = build_renderer(background, thickness, radius, min_score, show_ids, show_boxes)
    maps_dir = None if maps_dir is None else Path(maps_dir)
    if fmt == "openpose" and out is None and len(photos) > 1:
        raise click.UsageError("--format openpose writes one file per photo: give --out a directory")
    if render is not None and not render_is_dir and not cv2.haveImageWriter(f"x{render.suffix or '.jpg'}"):
        raise click.BadParameter(f"{shown_path(render)}: cannot write an image as '{render.suffix or 'no extension'}'"
                                 " (use .jpg or .png)", param_hint="--render")
    targets = _targets(photos, fmt, out if out_is_dir else None, render if render_is_dir else None,
                       ".png" if keep_alpha else ".jpg")
    outputs = [("--out", out)] if out is not None and not out_is_dir else []
    outputs += [("--render", render)] if render is not None and not render_is_dir else []
    outputs += [(what, path) for pair in targets for what, path in zip(("--out", "--render"), pair) if path]
    try:
        check_distinct(photos, outputs)
    except OutputConflict as exc:
        raise click.UsageError(str(exc)) from None
    _check_output(out, out_is_dir)
    _check_output(render, render_is_dir)
    _check_output(maps_dir, True)

    try:
        est = build_estimator(people_kwargs(max_people, part_candidates, keep_maps=maps_dir is not None), **est_opts)
        maps = None
        if maps_dir is not None:
            from ..formats.maps import MapsWriter

            maps = MapsWriter(maps_dir, est.skeleton)
    except PoseError as exc:
        raise fail(exc) from None
    if verbose:
        for line in describe_setup(est):
            say(line)

    model_name = est.model.info.name
    try:
        writer = None if out_is_dir else ResultWriter(fmt, out, model=model_name, skeleton=est.skeleton)
    except PoseError as exc:
        raise fail(exc) from None
    failed = done = 0
    bar = progress_bar(len(photos), quiet or len(photos) < 2, desc="photos", unit="photo")
    with safe_interrupts() as interrupts:  # Ctrl-C and SIGTERM stop between photos
        try:
            for photo, (result, rendered) in zip(photos, targets):
                interrupts.check()
                try:
                    t0 = time.perf_counter()
                    # without --render only the network sees the pixels: huge JPEGs decode reduced
                    frame, image = est.estimate_file(photo, keep_image=render is not None)
                    elapsed = time.perf_counter() - t0
                    if maps is not None:
                        maps.add(frame)
                    if result is not None:
                        one = ResultWriter(fmt, result, model=model_name, skeleton=est.skeleton)
                        try:
                            one.add(frame)
                            one.close()
                        except BaseException:
                            one.discard()  # no temporary file left behind
                            raise
                    else:
                        writer.add(frame)
                    if render is not None:
                        if keep_alpha:
                            alpha = read_alpha(photo)
                            image = image if alpha is None else np.dstack([image, alpha])
                        _write_image(rendered or render, renderer(image, frame.people))
                    done += 1
                    if verbose:
                        echo_above(bar, f"{shown_path(photo)}: {len(frame.people)} people, {elapsed * 1000:.0f} ms")
                except OutputError:
                    raise  # disk full, output gone: stop rather than fail every photo after it
                except PoseError as exc:
                    failed += 1
                    echo_above(bar, f"Error: {error_text(exc)}")  # flags, no password of a URL
                bar.update(1)
            bar.close()
            if writer is not None:
                if writer.count:
                    writer.close()
                else:
                    writer.discard()  # nothing succeeded: leave no output at all
        except BaseException as exc:
            bar.close()
            interrupted = isinstance(exc, KeyboardInterrupt)
            if writer is not None:
                _close_unfinished(writer, keep=interrupted)
            if isinstance(exc, PoseError):
                raise fail(exc) from None
            if interrupted:
                what = "Terminated" if isinstance(exc, Terminated) else "Interrupted"
                say(f"{what}: {_kept(done, len(photos), out, out_is_dir, writer, fmt)}.")
                raise interrupted_exit(exc) from None
            raise
    if failed:
        raise click.exceptions.Exit(1)


def _targets(photos, fmt: str, out_dir: Path | None, render_dir: Path | None,
             render_ext: str) -> list[tuple[Path | None, Path | None]]:
    """Each photo's result file and annotated image in the output directories (None: not
    one file per photo); names made unique by :func:`posecli.io.outputs.unique_names`."""
    names = unique_names(list(photos))
    out = []
    for name in names:
        result = None if out_dir is None else out_dir / (f"{name}_keypoints.json" if fmt == "openpose"
                                                         else f"{name}{result_suffix(fmt)}")
        rendered = None if render_dir is None else render_dir / f"{name}_rendered{render_ext}"
        out.append((result, rendered))
    return out


def _close_unfinished(writer: ResultWriter, keep: bool) -> None:
    """After an interrupt (``keep``): the finished photos stay, in valid JSON marked
    incomplete; after an error: an existing output is replaced only by a complete one."""
    try:
        if keep and writer.count:
            writer.close(complete=False, keep_partial=True)
        else:
            writer.discard()
    except PoseError:
        writer.discard()


def _kept(done: int, total: int, out: Path | None, out_is_dir: bool, writer, fmt: str) -> str:
    """What an interrupted run left, for its last line."""
    if out is None:
        return f"{done} of {total} photos written"
    if out_is_dir:
        return f"{done} of {total} photos written to {shown_path(out)}"
    if writer is None or not writer.count:
        return f"nothing written to {shown_path(out)}"
    marked = ' (marked "complete": false)' if fmt == "posecli" else ""
    return f"{writer.count} of {total} photos written to {shown_path(out)}{marked}"


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
