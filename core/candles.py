"""Closed OHLCV candles as column arrays, the unit every data path hands around."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.hashing import sha256_hex

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CandleWindow:
    """Consecutive-in-time (possibly gapped) closed candles of one symbol and timeframe.

    ``open_time`` is epoch ms of each candle's open; a candle closes at open + timeframe.
    ``source`` says where the rows came from (``sim``, ``import``, ``exchange:<id>``).
    """

    symbol: str
    timeframe: str
    timeframe_ms: int
    open_time: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    @property
    def last_close_time(self) -> int | None:
        """Close instant of the newest candle, or None for an empty window."""
        if len(self) == 0:
            return None
        return int(self.open_time[-1]) + self.timeframe_ms

    def missing_bars(self) -> int:
        """How many candles are absent between the first and the last one held."""
        if len(self) < 2:
            return 0
        first, last = int(self.open_time[0]), int(self.open_time[-1])
        return int(missing_between(first, last, len(self), self.timeframe_ms))

    def content_hash(self) -> str:
        """SHA-256 over the exact bytes of every column: any changed value changes it."""
        parts = [
            self.symbol.encode(),
            self.timeframe.encode(),
            np.ascontiguousarray(self.open_time, dtype="<i8").tobytes(),
        ]
        for column in (self.open, self.high, self.low, self.close, self.volume):
            parts.append(np.ascontiguousarray(column, dtype="<f8").tobytes())
        return sha256_hex(b"\x00".join(parts))

    def tail(self, count: int) -> "CandleWindow":
        """The newest ``count`` candles (all of them when fewer are held)."""
        return self.part(max(0, len(self) - count), len(self))

    def part(self, start: int, stop: int) -> "CandleWindow":
        """The candles at positions start..stop-1."""
        return CandleWindow(
            symbol=self.symbol,
            timeframe=self.timeframe,
            timeframe_ms=self.timeframe_ms,
            open_time=self.open_time[start:stop],
            open=self.open[start:stop],
            high=self.high[start:stop],
            low=self.low[start:stop],
            close=self.close[start:stop],
            volume=self.volume[start:stop],
            sources=self.sources,
        )


def missing_between(first_open: Any, last_open: Any, count: Any, timeframe_ms: int) -> Any:
    """How many candles are absent from ``count`` candles opening from ``first_open`` to
    ``last_open`` (numbers, or arrays of them: one window each)."""
    return (last_open - first_open) // timeframe_ms + 1 - count
