"""Indicator cost per window: the backtest's block path (SnapshotBatch.raw_block, every
window of the file a block at a time) beside the per-window 1-d path `sigmax decide` takes
(core.market_features._raw on one window), over the BTC/USDT 5m candles of ../shared/data
(or $SIGMAX_TEST_DATA), with 250-bar windows. Also the circuit breaker's ATR from the block
(SnapshotBatch.breaker_atr_block) beside its 1-d call.

    .venv/bin/python -m bench.indicators                # ~30 s
    .venv/bin/python -m bench.indicators --block 1024   # another block size
    .venv/bin/python -m bench.indicators --json

Each figure is the best of several repetitions of the whole file, in µs of this process's
CPU time per window (time.process_time: other processes share the CPUs, and waiting for
one is not the indicators' cost); the load average is printed beside them. It measures, it does not
judge: the exit status is 0 whatever the figures.
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from core import indicators
from core.candles import CandleWindow
from core.market_features import SnapshotBatch, _raw
from ingestion.candle_file import parse_candle_file

DATA = Path(os.environ.get("SIGMAX_TEST_DATA", "../shared/data")) / "BTC_USDT-5m.csv"
LOOKBACK = 250
BREAKER_PERIOD = 14  # safety.triggers.CIRCUIT_BREAKER_ATR_PERIOD (core must not read safety)
ONE_BY_ONE = 1000  # windows timed on the 1-d path (it is slow; the cost per window is flat)


def _best_us(run: Callable[[], None], windows: int, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.process_time()
        run()
        seconds.append(time.process_time() - started)
    return min(seconds) / windows * 1e6


def _blocks(series: CandleWindow, block: int, breaker: bool) -> Callable[[], None]:
    windows = len(series) - LOOKBACK + 1

    def run() -> None:
        batch = SnapshotBatch(series, LOOKBACK, block)
        for number in range(-(-windows // block)):
            if breaker:
                batch.breaker_atr_block(number, BREAKER_PERIOD)
            else:
                batch.raw_block(number)

    return run


def _one_by_one(series: CandleWindow, breaker: bool) -> Callable[[], None]:
    windows = [series.part(start, start + LOOKBACK) for start in range(ONE_BY_ONE)]

    def run() -> None:
        for window in windows:
            if breaker:
                indicators.atr(window.high[:-1], window.low[:-1], window.close[:-1], BREAKER_PERIOD)
            else:
                _raw(window.close, window.high, window.low, window.volume)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=int, default=SnapshotBatch.BLOCK)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    series = parse_candle_file(DATA.read_bytes(), "BTC/USDT", "5m", "import").candles
    windows = len(series) - LOOKBACK + 1
    repeats = arguments.repeats
    figures = {
        "windows": windows,
        "block": arguments.block,
        "load_average_before": os.getloadavg()[0],
        "block_us_per_window": _best_us(
            _blocks(series, arguments.block, breaker=False), windows, repeats
        ),
        "one_by_one_us_per_window": _best_us(
            _one_by_one(series, breaker=False), ONE_BY_ONE, repeats
        ),
        "breaker_block_us_per_window": _best_us(
            _blocks(series, arguments.block, breaker=True), windows, repeats
        ),
        "breaker_one_by_one_us_per_window": _best_us(
            _one_by_one(series, breaker=True), ONE_BY_ONE, repeats
        ),
        "load_average_after": os.getloadavg()[0],
    }
    if arguments.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{windows} windows of {LOOKBACK} bars ({DATA.name}), blocks of {arguments.block}")
    print(
        f"load average (1 min): {figures['load_average_before']:.2f} before, "
        f"{figures['load_average_after']:.2f} after, on {os.cpu_count()} CPUs"
    )
    print(f"indicators, block:        {figures['block_us_per_window']:8.1f} µs/window")
    print(f"indicators, one by one:   {figures['one_by_one_us_per_window']:8.1f} µs/window")
    print(f"breaker ATR, block:       {figures['breaker_block_us_per_window']:8.1f} µs/window")
    print(f"breaker ATR, one by one:  {figures['breaker_one_by_one_us_per_window']:8.1f} µs/window")


if __name__ == "__main__":
    main()
