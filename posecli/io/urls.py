"""Secrets in URLs: the one place a URL becomes text or a file name.

A source or mirror URL may carry credentials (``rtsp://admin:PASSWORD@cam/live``,
``https://host/x?token=...``). The real URL is used to connect; everything posecli writes
(messages, progress, JSON fields, file names) goes through :func:`redact` or
:func:`url_stem` first, which keep the user name and hide the password (``admin:***@``) and
the values of credential-like query parameters (``token=***``).
"""

from __future__ import annotations

import re

HIDDEN = "***"
#: A URL inside any text: a scheme, ``://`` and what follows up to a space or a quote; also
#: ``scheme:/`` as a URL reads once it went through a file path (``Path`` folds ``//``).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/{1,2}[^\s'\"<>]*")
#: Query parameters whose values are secrets (``password=``, ``access_token=``, ``api-key=``,
#: ``X-Amz-Signature=``...): the name, or its last ``_``/``-``/``.`` separated word.
_SECRET_WORDS = ("password", "passwd", "pwd", "pass", "secret", "token", "key", "apikey", "auth",
                 "authorization", "signature", "sig", "credential", "credentials", "session", "sessionid")
_SECRET_KEY = re.compile(r"(?i)^(?:.*[_.-])?(?:" + "|".join(_SECRET_WORDS) + r")$")
_PARAM = re.compile(r"([?&;])([^=&;#]+)=([^&;#]*)")


def _redact_one(url: str) -> str:
    """``url`` with the password of its user info and secret query values hidden."""
    scheme, _, rest = url.partition(":")
    slashes = "//" if rest.startswith("//") else "/"
    rest = rest[len(slashes):]
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            end = min(end, at)
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, host = netloc.rpartition("@")  # a password may hold an unescaped '@'
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{host}" if colon else f"{user}@{host}"
    elif slashes == "/":  # a file path such as C:/Users/x.jpg: left as it is
        return url
    tail = _PARAM.sub(lambda m: f"{m[1]}{m[2]}={HIDDEN}" if _SECRET_KEY.match(m[2]) and m[3] else m[0], tail)
    return f"{scheme}:{slashes}{netloc}{tail}"


def redact(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) with every URL's credentials hidden:
    ``rtsp://admin:***@cam/live``, ``https://h/x?token=***``. Text without a URL is returned as is."""
    text = str(text)
    if ":/" not in text:
        return text
    return _URL.sub(lambda m: _redact_one(m[0]), text)


def url_stem(url: str, default: str = "stream") -> str:
    """A file-name stem for a stream URL: its host, port and path as ``[A-Za-z0-9._-]``
    (``rtsp://admin:pw@192.168.1.5:554/live`` -> ``192.168.1.5_554_live``); never the user
    info or the query."""
    rest = str(url).split("://", 1)[-1]
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    netloc, slash, path = rest.partition("/")
    host = netloc.rpartition("@")[2]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", host + slash + path).strip("_.") or default


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``(url without its user info, (user, password) or None)``, both percent-decoded
    (``http://me:p%40ss@host/x`` -> ``("http://host/x", ("me", "p@ss"))``): HTTP clients
    send them as an Authorization header, never as part of the host name."""
    from urllib.parse import unquote

    scheme, sep, rest = str(url).partition("://")
    if not sep:
        return url, None
    end = min((i for i in (rest.find(c) for c in "/?#") if i != -1), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}{rest[end:]}", (unquote(user), unquote(password))
