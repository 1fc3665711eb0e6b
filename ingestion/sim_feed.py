"""Keep simulated candles stored up to an instant, continuing the stored series."""

from dataclasses import dataclass

from core.timeframes import floor_to, timeframe_ms
from ingestion.sim import simulate_candles
from storage.candles import CandleStore


class RealDataPresentError(ValueError):
    """The symbol holds non-simulated candles; simulating on top would mix fact and fiction."""


@dataclass(frozen=True)
class SimulationExtended:
    added: int
    first_open_time: int | None
    last_close_time: int


def extend_simulation(
    store: CandleStore, symbol: str, timeframe: str, until: int, bars: int, seed: int
) -> SimulationExtended:
    """Store simulated closed candles up to ``until`` (epoch ms), at least ``bars`` of them.

    An up-to-date series is left alone; a stale one is continued from its last close (or
    restarted ``bars`` back when it is older than that, leaving the gap visible).
    """
    step = timeframe_ms(timeframe)
    last_close = floor_to(until, step)
    newest = store.window(symbol, timeframe, last_close, 1)
    if len(newest) and any(source != "sim" for source in newest.sources):
        raise RealDataPresentError(
            f"{symbol} {timeframe} holds non-simulated candles ({', '.join(newest.sources)}); "
            "simulate another symbol or use another SIGMAX_HOME"
        )
    start = last_close - bars * step
    start_price = None
    if newest.last_close_time is not None and newest.last_close_time > start:
        start, start_price = newest.last_close_time, float(newest.close[-1])
    count = (last_close - start) // step
    if count <= 0:
        return SimulationExtended(added=0, first_open_time=None, last_close_time=last_close)
    candles = simulate_candles(symbol, timeframe, start, count, seed, start_price)
    counts = store.insert_candles(candles)
    return SimulationExtended(added=counts.added, first_open_time=start, last_close_time=last_close)
