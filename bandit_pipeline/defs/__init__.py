"""Dagster definitions: thin wrappers over plain functions in the package."""
