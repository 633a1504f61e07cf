"""Fetching a model's published OpenVINO IR, checking it, and importing it into the store.

The catalog holds what Open Model Zoo publishes for each model (file names, sizes, sha256,
URLs: ``models/intel/<name>/model.yml`` of openvinotoolkit/open_model_zoo, release 2021.4).
A download goes to ``<store>/sources/<name>/<variant>/<file>.part``: a second run resumes a
partial file with an HTTP Range request, a transfer that breaks is resumed a few times at
once, and a file takes its real name only once its size and sha256 are right. The model
files in the store are then written by the importer, each atomically; nothing under the
store's own names is ever half-written. Verified IR files are kept beside as the source
(``posecli models import`` can convert them again offline).

``source`` replaces the official URLs: a folder holding the files (an offline copy) or a
base URL (a mirror); the files are looked up by name directly under it.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..io.atomic import commit_pending
from ..io.urls import redact, split_credentials
from .store import DEFAULT_MODEL, check_model_name, model_path, store_dir, unlink_store_link
from .transfer import MIN_RATE_BPS, RateFloor, RedirectRefused, TooSlow, open_url

_OMZ = "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2021.4/models_bin/3"

#: Called as ``progress(file_name, bytes_done, bytes_total)`` when a file starts (with what
#: is already there), after each chunk, and when it is complete.
Progress = Callable[[str, int, int], None]

CHUNK = 256 * 1024
#: Automatic resumes of one file after a transfer breaks, before giving up.
RETRIES = 3
_NO_SPACE = {getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, n)}
#: Reasons a request failed that are worth a second try (the server went away, not "no such host").
_TRANSIENT = (TimeoutError, ConnectionResetError, ConnectionAbortedError, http.client.HTTPException)


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    sha256: str
    url: str


@dataclass(frozen=True)
class RemoteModel:
    name: str
    variant: str
    files: tuple[RemoteFile, ...]

    @property
    def xml(self) -> RemoteFile:
        return next(f for f in self.files if f.name.endswith(".xml"))


def _omz(name: str, variant: str, xml: tuple[int, str], weights: tuple[int, str]) -> RemoteModel:
    base = f"{_OMZ}/{name}/{variant}/{name}"
    return RemoteModel(name, variant, (
        RemoteFile(f"{name}.xml", xml[0], xml[1], f"{base}.xml"),
        RemoteFile(f"{name}.bin", weights[0], weights[1], f"{base}.bin"),
    ))


#: Models that ``posecli models download`` knows: Intel's calibrated INT8 IR (FP16-INT8), from
#: which the importer makes the float32, INT8 and float16 ONNX models.
CATALOG: dict[str, RemoteModel] = {
    DEFAULT_MODEL: _omz(
        DEFAULT_MODEL, "FP16-INT8",
        (426156, "581b082e749848fdfc6d4b4b70e8189c3c2bae1c2d59c6b2c1a026a5471754e3"),
        (4170034, "df2a9f41f15c3a0c8a0c5a704650338a3cc5c7bb588f2bfc14ea7093fa37b446"),
    ),
}


def remote_model(name: str | None) -> RemoteModel:
    """The catalog entry for ``name`` (default model if None); :class:`ModelError` if unknown."""
    name = name or DEFAULT_MODEL
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelError(
            f"no download known for model '{name}' (known: {', '.join(CATALOG)}); "
            "convert an IR you have with models import instead"
        ) from None


def sources_dir(name: str, variant: str, store: Path | None = None) -> Path:
    """Where the verified IR of ``name`` is kept in the store."""
    return (store or store_dir()) / "sources" / check_model_name(name) / check_model_name(variant)


def fetch_ir(
    name: str | None = None,
    source: str | Path | None = None,
    *,
    store: Path | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
    retries: int = RETRIES,
) -> Path:
    """Download (or copy from ``source``) and verify the IR of model ``name``.

    Returns the verified ``.xml`` (its ``.bin`` beside it) under :func:`sources_dir`.
    Files already there and verified are not fetched again. Raises :class:`ModelError`
    naming the URL or file: unreachable host, HTTP error, wrong size or checksum, a
    transfer that kept breaking (the partial file is kept for the next run), disk full.
    """
    remote = remote_model(name)
    if timeout is None or not timeout > 0 or timeout == float("inf"):
        raise ModelError(f"timeout={timeout!r}: expected a positive number of seconds")
    if retries < 0:
        raise ModelError(f"retries={retries!r}: expected 0 or more")
    folder = sources_dir(remote.name, remote.variant, store)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot write the model store ({exc.strerror})", path=folder) from None
    for file in remote.files:
        final = folder / file.name
        if final.is_file() and final.stat().st_size == file.size and _sha256(final) == file.sha256:
            if progress:
                progress(file.name, file.size, file.size)
            continue
        part = folder / (file.name + ".part")
        _refuse_link(part)
        where = _locate(file, source)
        if isinstance(where, Path):
            _copy(where, part, file, progress)
        else:
            _http_fetch(where, part, file, progress, timeout, retries)
        _verify(part, file, where if isinstance(where, Path) else redact(where))
        commit_pending(part, final, "the model file")  # verified: renamed into place
    return folder / remote.xml.name


def download_model(
    name: str | None = None,
    source: str | Path | None = None,
    *,
    precisions: tuple[str, ...] = ("fp32", "int8", "fp16"),
    force: bool = False,
    store: Path | None = None,
    progress: Progress | None = None,
    on_import: Callable[[str, Path, bool], None] | None = None,
    timeout: float = 30.0,
) -> list[Path]:
    """Fetch and verify the IR (:func:`fetch_ir`), then import it into the store.

    Each precision is converted unless already in the store (``force``: again).
    ``on_import(precision, path, converted)`` is called per precision. Returns the model
    files. Converting needs the ``import`` extra (openvino, onnx).
    """
    from .importers.openvino import import_openvino_ir

    remote = remote_model(name)
    _check_converter()  # before fetching anything: no download that cannot be used
    root = store or store_dir()
    xml = fetch_ir(remote.name, source, store=root, progress=progress, timeout=timeout)
    out = []
    for precision in precisions:
        target = model_path(remote.name, precision, root)
        converted = force or not target.exists()
        if converted:
            unlink_store_link(target)  # never written through a link in the store
            import_openvino_ir(xml, target, precision=precision)
        if on_import:
            on_import(precision, target, converted)
        out.append(target)
    return out


def _check_converter() -> None:
    import importlib.util
    import sys

    from ..errors import MissingExtraError

    for module in ("openvino", "onnx"):
        if module in sys.modules:
            missing = sys.modules[module] is None
        else:
            missing = importlib.util.find_spec(module) is None
        if missing:
            raise MissingExtraError(module, "import", "converting the downloaded model")


# -- where a file comes from --------------------------------------------------------------
def _locate(file: RemoteFile, source: str | Path | None) -> str | Path:
    """The URL or local path of ``file``: the official URL, or ``file.name`` under ``source``."""
    if source is None:
        return file.url
    text = str(source)
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        return text.rstrip("/") + "/" + urllib.parse.quote(file.name)
    if scheme == "file":
        text = urllib.request.url2pathname(urllib.parse.urlsplit(text).path)
    elif len(scheme) > 1:  # a one-letter scheme is a Windows drive
        raise ModelError(f"unsupported source '{redact(text)}': give a folder or an http(s) URL")
    folder = Path(text).expanduser()
    if folder.is_file() and folder.suffix.lower() in (".xml", ".bin"):
        folder = folder.parent
    if not folder.is_dir():
        raise ModelError("no such folder (give a folder holding the IR, or an http(s) URL)", path=folder)
    path = folder / file.name
    if not path.is_file():
        raise ModelError(f"{file.name} is not in this folder", path=folder)
    return path


# -- local copy ---------------------------------------------------------------------------
def _copy(src: Path, part: Path, file: RemoteFile, progress: Progress | None) -> None:
    size = src.stat().st_size
    if size != file.size:
        raise ModelError(f"is {size} bytes, expected {file.size}: not the published {file.name}", path=src)
    if progress:
        progress(file.name, 0, file.size)
    try:
        with open(src, "rb") as fin:
            complete = _receive(fin, part, 0, file, progress)  # the same writing as a download
    except ModelError:  # disk full, store not writable: nothing of a local copy is kept
        part.unlink(missing_ok=True)
        raise
    except OSError as exc:
        complete, reason = False, exc.strerror
    else:
        reason = "it stopped before the end of the file"
    if not complete:
        part.unlink(missing_ok=True)
        raise ModelError(f"cannot copy ({reason})", path=src)


# -- HTTP with resume -----------------------------------------------------------------------
def _http_fetch(url: str, part: Path, file: RemoteFile, progress: Progress | None,
                timeout: float, retries: int) -> None:
    """Bring ``part`` to ``file.size`` bytes from ``url``, resuming what is there. A user
    name and password in ``url`` go as HTTP basic authentication (to that host only, not
    to where it redirects); messages name the URL with the password hidden."""
    plain, credentials = split_credentials(url)
    url = redact(url)  # the name messages use from here on
    breaks = 0
    restarted = False
    while True:
        have = part.stat().st_size if part.exists() else 0
        if have > file.size:  # not a prefix of this file
            part.unlink()
            have = 0
        if progress:
            progress(file.name, have, file.size)
        if have == file.size:
            return
        headers = {"User-Agent": f"posecli/{_version()}", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            request = urllib.request.Request(plain, headers=headers)
            if credentials is not None:  # to this host only: not copied onto a redirect
                request.add_unredirected_header("Authorization", _basic_auth(*credentials))
            response = open_url(request, timeout=timeout)  # http(s) redirects only
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and have and not restarted:  # the range does not fit: start over
                part.unlink(missing_ok=True)
                restarted = True
                continue
            if exc.code == 401:
                raise _unauthorized(url, exc, credentials is not None) from None
            raise ModelError(f"HTTP error {exc.code} ({exc.reason})", path=url) from None
        except RedirectRefused as exc:
            raise ModelError(str(exc.reason), path=url) from None
        except (urllib.error.URLError, *_TRANSIENT, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if breaks >= retries or not isinstance(reason, _TRANSIENT):
                raise _unreachable(url, reason) from None
            breaks += 1
            time.sleep(min(2.0, 0.25 * breaks))
            continue
        with response:
            start = _start_offset(response, have, url)
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and start + int(length) != file.size:
                raise ModelError(
                    f"the server offers {start + int(length)} bytes, expected {file.size}: "
                    f"not the published {file.name}", path=url)
            try:
                complete = _receive(response, part, start, file, progress, RateFloor(timeout))
            except TooSlow as exc:  # a trickle never times out a read: it would never end
                raise ModelError(f"the transfer crawled at {exc.rate:.0f} bytes/s for {exc.window_s:.0f} s (under "
                                 f"{MIN_RATE_BPS} bytes/s); run the same command again to resume", path=url) from None
        if complete:
            return
        if breaks >= retries:
            got = part.stat().st_size if part.exists() else 0
            raise ModelError(
                f"the transfer stopped at {got} of {file.size} bytes, {retries + 1} times; "
                "run the same command again to resume", path=url)
        breaks += 1
        time.sleep(min(2.0, 0.25 * breaks))


def _start_offset(response, have: int, url: str) -> int:
    """Where the response body starts in the file: ``have`` for a 206 that says so, 0 for 200."""
    if response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    try:
        unit, _, rest = content_range.partition(" ")
        first = int(rest.split("-", 1)[0])
    except ValueError:
        first = -1
    if unit != "bytes" or first != have:
        raise ModelError(f"the server answered a resume with the wrong range ('{content_range}')", path=url)
    return have


def _receive(response, part: Path, start: int, file: RemoteFile, progress: Progress | None,
             floor: RateFloor | None = None) -> bool:
    """Write the body (an HTTP response or a file: anything with ``read(n)``) into ``part``
    from ``start``; True when the file is complete. ``floor``: :class:`TooSlow` when the
    data comes too slowly (each read returns what has arrived, so a trickle is seen)."""
    done = start
    read = getattr(response, "read1", None) if floor is not None else None
    read = read or response.read
    # O_NOFOLLOW: a link put at the .part's name is refused, never written through
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(part, flags if start else flags | os.O_TRUNC, 0o666)
        with open(fd, "wb") as out:
            out.seek(start)
            out.truncate()
            while done < file.size:
                try:
                    chunk = read(min(CHUNK, file.size - done))
                except (ConnectionError, http.client.HTTPException, OSError):
                    break  # the connection broke: keep what arrived, resume from there
                if not chunk:
                    break  # the server closed early
                out.write(chunk)
                done += len(chunk)
                if floor is not None:
                    floor.add(len(chunk))
                if progress:
                    progress(file.name, done, file.size)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise _disk_full(part, exc) from None
        if exc.errno == errno.ELOOP:
            _refuse_link(part)
        raise ModelError(f"cannot write the model store ({exc.strerror})", path=part) from None
    return done == file.size


# -- checks and messages ------------------------------------------------------------------
def _verify(part: Path, file: RemoteFile, where: str | Path) -> None:
    digest = _sha256(part)
    if digest != file.sha256:
        part.unlink(missing_ok=True)
        raise ModelError(
            f"checksum mismatch for {file.name} (sha256 {digest[:16]}..., expected {file.sha256[:16]}...): "
            "damaged in transfer or not the published file; deleted, nothing was imported",
            path=where)


def _refuse_link(part: Path) -> None:
    """A partial download's name taken by a symbolic link: refused (writing through it
    would overwrite whatever it points to)."""
    if part.is_symlink():
        raise ModelError("is a symbolic link, not a partial download: posecli never writes through a link "
                         "in the model store; delete it and run the command again", path=part)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _unreachable(url: str, reason) -> ModelError:
    if isinstance(reason, TimeoutError):
        why = "no answer in time"
    elif isinstance(reason, socket.gaierror):
        why = "host name not found"
    else:
        why = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return ModelError(
        f"cannot download ({why}); no network? A copy of the files works too: source=DIR|URL", path=url)


def _basic_auth(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _unauthorized(url: str, exc: urllib.error.HTTPError, sent: bool) -> ModelError:
    """HTTP 401: the server wants credentials, or refused those in the URL."""
    if sent:
        why = "the server refused the user name and password given in the URL"
    else:
        why = "the server wants a user name and password: give them in the URL, http://USER:PASSWORD@HOST/..."
    return ModelError(f"{why} (HTTP {exc.code} {exc.reason})", path=url)


def _disk_full(part: Path, exc: OSError) -> ModelError:
    free = shutil.disk_usage(part.parent).free if part.parent.exists() else 0
    return ModelError(
        f"disk full ({exc.strerror}; {free / 1e6:.1f} MB free); free some space and run the "
        "command again to resume", path=part.parent)


def _version() -> str:
    from ..version import __version__

    return __version__
