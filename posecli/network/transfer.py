"""HTTP transfers that end: redirects only to http(s), and a floor under the transfer rate.

A download's socket timeout bounds each wait for data, not the whole transfer: a mirror that
trickles a byte every half second would never end. :class:`RateFloor` fails a transfer that
stays under :data:`MIN_RATE_BPS` for a whole window (the download's ``timeout``). A mirror
that redirects to ``ftp://`` (or ``file://``) is refused instead of followed.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request

#: A transfer slower than this (bytes per second) over a whole window is given up. The
#: smallest published model file still comes in a minute at this rate.
MIN_RATE_BPS = 1024
_SCHEMES = ("http", "https")


class TooSlow(Exception):
    """The transfer stayed under :data:`MIN_RATE_BPS` for a window (``rate``: bytes per second)."""

    def __init__(self, rate: float, window_s: float):
        super().__init__(f"{rate:.0f} bytes/s over {window_s:g} s")
        self.rate, self.window_s = rate, window_s


class RedirectRefused(urllib.error.URLError):
    """A redirect to a scheme other than http(s) (``scheme``: where it pointed)."""

    def __init__(self, scheme: str):
        super().__init__(f"the server redirects to {scheme or 'a relative'}:// (posecli follows http and https only)")
        self.scheme = scheme


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme.lower()
        if scheme not in _SCHEMES:
            raise RedirectRefused(scheme)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def open_url(request: urllib.request.Request, timeout: float):
    """``urllib.request.urlopen`` that follows redirects to http(s) only
    (:class:`RedirectRefused`, a ``URLError``, otherwise)."""
    return _OPENER.open(request, timeout=timeout)


class RateFloor:
    """Counts a transfer's bytes; :meth:`add` raises :class:`TooSlow` at the end of a window
    of ``window_s`` seconds that brought less than ``min_bps`` bytes per second."""

    def __init__(self, window_s: float, min_bps: float = MIN_RATE_BPS):
        self.window_s, self.min_bps = float(window_s), float(min_bps)
        self._start, self._bytes = time.monotonic(), 0

    def add(self, n: int) -> None:
        self._bytes += n
        elapsed = time.monotonic() - self._start
        if elapsed < self.window_s:
            return
        rate = self._bytes / elapsed
        if rate < self.min_bps:
            raise TooSlow(rate, elapsed)
        self._start, self._bytes = time.monotonic(), 0
