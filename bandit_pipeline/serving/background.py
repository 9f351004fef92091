"""The serving process's periodic background writers share this small base."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PeriodicFlusher:
    """A daemon thread that calls ``flush()`` every ``flush_seconds`` once started;
    ``close()`` stops it and flushes what is left. Not started, nothing runs by itself
    (the request path or the caller flushes)."""

    thread_name = "flusher"

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.flush_seconds):
                try:
                    self.flush()
                except Exception:  # the thread must outlive any one bad flush
                    log.exception("%s: flush failed", self.thread_name)

        self._thread = threading.Thread(target=loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
