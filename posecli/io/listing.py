"""Inputs found in a folder."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .paths import is_image, is_video, not_regular


@dataclass
class Listing:
    """Inputs found in a folder: ``files`` (images and videos, sorted), ``skipped`` (other
    files), ``problems`` (entries that cannot be listed or read, with the reason)."""

    root: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def images(self) -> list[Path]:
        return [p for p in self.files if is_image(p)]

    @property
    def videos(self) -> list[Path]:
        return [p for p in self.files if is_video(p)]


def list_inputs(directory: str | Path, recursive: bool = False, exclude: str | Path | None = None) -> Listing:
    """Images and videos in ``directory`` by extension, sorted by path.

    Hidden files and folders (name starting with '.') are ignored; files with other
    extensions are counted in ``skipped``. ``exclude``: a folder not to descend into
    (e.g. the output folder when it lies inside the input folder). Linked folders are
    followed once: a link back to a folder already listed (``ln -s . self``, a loop) is a
    problem of that entry, and so are links that lead nowhere and folders that cannot be
    read; they go to ``problems`` and the rest is listed.
    """
    root = Path(directory)
    if not root.exists():
        raise InputError("no such folder", path=root)
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    skip_dir = Path(exclude).resolve() if exclude is not None else None
    listing = Listing(root)
    try:
        seen = {_identity(root)}
    except OSError as exc:
        raise InputError(f"cannot read folder ({exc.strerror})", path=root) from None
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            if folder == root:
                raise InputError(f"cannot list folder ({exc.strerror})", path=root) from None
            listing.problems.append((folder, f"cannot list folder ({exc.strerror})"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
                if entry.is_symlink():
                    os.stat(path)  # a loop or a dangling link raises here
            except OSError as exc:
                problem = "symbolic link loop" if exc.errno == errno.ELOOP else f"broken link ({exc.strerror})"
                if is_image(path) or is_video(path) or recursive:
                    listing.problems.append((path, problem))
                continue
            if is_dir:
                if not recursive or (skip_dir is not None and path.resolve() == skip_dir):
                    continue
                try:
                    key = _identity(path)
                except OSError as exc:
                    listing.problems.append((path, f"cannot read folder ({exc.strerror})"))
                    continue
                if key in seen:
                    listing.problems.append((path, "links back to a folder already listed (a loop); skipped"))
                    continue
                seen.add(key)
                pending.append(path)
            elif (is_image(path) or is_video(path)) and not entry.is_file():  # a FIFO would hang the run
                try:
                    listing.problems.append((path, not_regular(os.stat(path).st_mode)))
                except OSError as exc:
                    listing.problems.append((path, f"cannot read ({exc.strerror})"))
            elif is_image(path) or is_video(path):
                listing.files.append(path)
            else:
                listing.skipped.append(path)
    listing.files.sort(key=lambda p: p.relative_to(root).parts)
    listing.skipped.sort()
    listing.problems.sort()
    return listing


def _identity(folder: Path) -> tuple[int, int]:
    """(device, inode): the same folder reached through different links has the same one."""
    st = os.stat(folder)
    return st.st_dev, st.st_ino
