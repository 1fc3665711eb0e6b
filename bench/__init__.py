"""Benchmarks: scripts run by hand as modules (``python -m bench.<name>``), not part of the
package. Run as files they would not start: ``bench/rl.py`` and ``bench/backtest.py`` would
shadow the packages of those names."""
