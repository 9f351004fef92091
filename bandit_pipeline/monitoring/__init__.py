"""Guarding the core metrics: rollups, the CTR alert, the kill switch, data checks."""
