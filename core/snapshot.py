"""The market evidence at one instant: every indicator value, named, with its window."""

from collections.abc import Mapping
from dataclasses import dataclass

from core.evidence import Evidence


class InsufficientDataError(ValueError):
    """Too few closed candles to compute the indicators; the decision must hold, saying so."""

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"need at least {needed} closed candles, have {available}")
        self.needed = needed
        self.available = available


@dataclass(frozen=True)
class MarketSnapshot:
    """Indicator values of one symbol/timeframe as of ``as_of`` (epoch ms), keyed by name."""

    symbol: str
    timeframe: str
    as_of: int
    last_close_time: int
    values: Mapping[str, Evidence]

    def __getitem__(self, name: str) -> Evidence:
        return self.values[name]

    def value(self, name: str) -> float:
        return self.values[name].value

    def evidence(self) -> tuple[Evidence, ...]:
        """All values in name order (the order the decision record lists them)."""
        return tuple(self.values[name] for name in sorted(self.values))
