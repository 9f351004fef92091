"""The library warnings and log lines the product knowingly accepts, silenced once, here.

Each is a feature the product relies on and that its library still marks as not final;
the tests pin down the behaviour the product needs from it, so an upgrade that changes
it fails there. Anything else still warns.
"""

from __future__ import annotations

import logging
import warnings

ACCEPTED = (
    # Single-run backfills: a range of windows in one run, in time order, is how the job
    # keeps a backfill fast and incremental (defs/posteriors.py and the other assets).
    ("BetaWarning", r"Parameter `backfill_policy` of function `(multi_)?asset`"),
    # Partitioned asset checks: each Great Expectations suite checks the windows its run
    # wrote (defs/checks.py).
    ("PreviewWarning", r"Specifying a partitions_def on an AssetCheckSpec"),
)


# pyspark (the `spark` extra) warns on import under pandas 3; Great Expectations imports
# it to detect Spark on every check, and the Spark engine converts no pandas frames.
PYSPARK_PANDAS = r"PySpark does not yet fully support pandas"


def accept_known_warnings() -> None:
    """Install the filters (idempotent: the warnings module drops duplicates)."""
    from dagster_shared.utils import warnings as dagster_warnings

    for category, message in ACCEPTED:
        warnings.filterwarnings(
            "ignore", message=message, category=getattr(dagster_warnings, category)
        )
    warnings.filterwarnings("ignore", message=PYSPARK_PANDAS, category=FutureWarning)


class _ExpectedNoise(logging.Filter):
    """psycopg logs "error ignored terminating <Copy>" when a connection drops in the middle
    of a COPY: the ingest then fails with its own one-line error, which says the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


def quiet_library_logs() -> None:
    """Install the log filters (idempotent)."""
    logger = logging.getLogger("psycopg")
    if not any(isinstance(f, _ExpectedNoise) for f in logger.filters):
        logger.addFilter(_ExpectedNoise())
