"""Dagster definitions: thin wrappers over plain functions in the package.

One module per domain (posteriors, publishing, safeguards, quality checks, the schedule),
each with a function that builds its ``Definitions`` from the settings;
``bandit_pipeline.definitions`` merges them when Dagster loads the code location.
"""

from bandit_pipeline.accepted_warnings import accept_known_warnings

accept_known_warnings()
