"""Photos of a folder job decoded ahead, while the network and parser work on the one before.

:class:`Prefetch` runs a background thread that reads and decodes the image jobs of a list,
in order, at most ``depth`` ahead (``PoseEstimator.read_file``: the decode the one-at-a-time
path does, so results are identical). The caller takes them back in the same order with
:meth:`Prefetch.take`, which raises what decoding that photo raised, so an unreadable photo
is reported exactly as before. Video jobs are skipped: their own pipeline decodes them.
"""

from __future__ import annotations

import queue
import threading

_POLL_S = 0.1


class Prefetch:
    """:meth:`start` (or use as a context manager), :meth:`take` each job in the order given,
    :meth:`close`."""

    def __init__(self, estimator, jobs, depth: int = 2):
        self._estimator = estimator
        self._jobs = [j for j in jobs if j.kind == "image"]
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="posecli-prefetch", daemon=True)

    def start(self) -> Prefetch:
        self._thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop decoding ahead (idempotent); a decode in progress finishes in the background."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5.0)

    def take(self, job):
        """The decoded photo for ``job`` (None for a video job); raises its decoding error."""
        if job.kind != "image":
            return None
        while True:
            try:
                got, decoded, error = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the prefetch thread stopped") from None
        if got is not job:
            raise RuntimeError(f"prefetched {got.input}, asked for {job.input}: take jobs in order")
        if error is not None:
            raise error
        return decoded

    def _work(self) -> None:
        for job in self._jobs:
            try:
                item = (job, self._estimator.read_file(job.input, keep_image=job.render is not None), None)
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread by take()
                item = (job, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue
            if self._stop.is_set():
                return
