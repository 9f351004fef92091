"""Pure policy math (no I/O): the posterior definition, its decay, and Thompson sampling.

`posterior` holds the parameters and the decay, `reference` evaluates the definition in
plain Python (docs/posterior.md), `thompson` samples exploration slots from published
posteriors.
"""

from bandit_pipeline.policy.posterior import PosteriorParameters, decay_factor
from bandit_pipeline.policy.reference import LoggedEvent, reference_posteriors, reference_rollups

__all__ = [
    "LoggedEvent",
    "PosteriorParameters",
    "decay_factor",
    "reference_posteriors",
    "reference_rollups",
]
