"""The synthetic shop: batch traffic for tests and benchmarks (``traffic``), and the
closed-loop shop of the staging dry run (``shop``, ``dry_run``) with the hidden truth it
keeps for the report (``truth``)."""

from bandit_pipeline.simulate.traffic import (
    CATEGORIES,
    SURFACES,
    generate_catalog,
    generate_events,
    write_jsonl,
)
from bandit_pipeline.simulate.truth import DryRunTruth, RegretWindow, TrueReward

__all__ = [
    "CATEGORIES",
    "SURFACES",
    "DryRunTruth",
    "RegretWindow",
    "TrueReward",
    "generate_catalog",
    "generate_events",
    "write_jsonl",
]
