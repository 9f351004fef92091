"""Serving: Thompson-sampling exploration slots injected into recommendation responses."""

from bandit_pipeline.serving.service import (
    DecisionRequest,
    DecisionResponse,
    DecisionTrace,
    ExplorationService,
    ResponseItem,
)

__all__ = [
    "DecisionRequest",
    "DecisionResponse",
    "DecisionTrace",
    "ExplorationService",
    "ResponseItem",
]
