"""Decision traces appended to the warehouse table ``bandit_decisions`` in batches.

Optional (``BANDIT_DECISIONS_TABLE=true``): the JSON log line is the primary record; the
table lets analysts join decisions to events with SQL. Traces are queued by the request
path as rows and written by a thread every ``flush_seconds``; when the warehouse is
down the batch is dropped and counted, and serving goes on.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bandit_pipeline.serving import metrics
from bandit_pipeline.serving.background import PeriodicFlusher
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.sql import sql_statement

if TYPE_CHECKING:  # the service imports this module
    from bandit_pipeline.serving.service import DecisionTrace

log = logging.getLogger(__name__)
MAX_QUEUED = 100_000


class DecisionTable(PeriodicFlusher):
    """The queue of decision rows and the thread that appends them to the warehouse."""

    thread_name = "decision-writer"

    def __init__(self, engine: Engine, flush_seconds: float = 1.0) -> None:
        super().__init__(flush_seconds)
        self.engine = engine
        self._queued: list[dict] = []
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> DecisionTable:
        """The table of the warehouse at ``url``."""
        return cls(make_engine(url))

    def add(self, trace: DecisionTrace) -> None:
        """Queue the trace's row, built now: the caller owns the trace afterwards."""
        row = _row(trace)
        with self._lock:
            if len(self._queued) >= MAX_QUEUED:
                metrics.DECISION_ROWS_DROPPED.inc()
                return
            self._queued.append(row)

    def flush(self) -> None:
        """Append every queued row in one transaction; a failure drops and counts them."""
        with self._lock:
            batch, self._queued = self._queued, []
        if not batch:
            return
        try:
            with self.engine.begin() as connection:
                connection.execute(sql_statement("serving/insert_decisions"), batch)
        except SQLAlchemyError as exc:
            metrics.DECISION_ROWS_DROPPED.inc(len(batch))
            log.warning("%d decision rows not written: %s", len(batch), exc)

    def close(self) -> None:
        super().close()
        self.engine.dispose()


def _row(trace: DecisionTrace) -> dict:
    """A ``bandit_decisions`` row; lists as JSON text."""
    return {
        "decided_at": trace.decided_at,
        "namespace": trace.namespace,
        "surface": trace.surface,
        "user_id": trace.user_id,
        "request_id": trace.request_id,
        "explored": trace.explored,
        "reason": trace.reason,
        "policy_id": trace.policy_id,
        "experiment": trace.experiment,
        "variant": trace.variant,
        "snapshot_version": trace.snapshot_version,
        "seed": trace.seed,
        "explore_slots": json.dumps(trace.explore_slots),
        "chosen": json.dumps(trace.chosen),
        "scores": json.dumps(trace.scores),
        "eligible": trace.eligible,
        "skipped_recent": json.dumps(trace.skipped_recent),
        "skipped_shown": json.dumps(trace.skipped_shown),
        "detail": trace.detail,
    }
