"""Benchmarks: scripts run by hand (``python bench/<name>.py``), not part of the package."""
