"""The serving process's background threads: periodic work that never dies of one
failure."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """A daemon thread that calls ``work()`` every ``seconds`` from ``start()`` until
    ``stop()``; a call that fails is logged, and the thread goes on."""

    def __init__(self, name: str, seconds: float, work: Callable[[], None]) -> None:
        self.name, self.seconds, self.work = name, seconds, work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.seconds):
                try:
                    self.work()
                except Exception:  # the thread must outlive any one bad call
                    log.exception("%s failed", self.name)

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class PeriodicFlusher:
    """Writes queued work: a thread calls ``flush()`` every ``flush_seconds`` once
    started; ``close()`` stops it and flushes what is left. Not started, nothing runs
    by itself (the request path or the caller flushes)."""

    thread_name = "flusher"

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self._periodic = Periodic(self.thread_name, flush_seconds, self.flush)

    def flush(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._periodic.start()

    def close(self) -> None:
        self._periodic.stop()
        self.flush()
