"""Pure policy math (no I/O): reward, decay and Beta posterior parameters (DESIGN.md §3)."""

from bandit_pipeline.policy.posterior import PosteriorParameters, decay_factor

__all__ = ["PosteriorParameters", "decay_factor"]
