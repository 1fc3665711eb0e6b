"""The market clock: what "now" is for the service. Live it is the wall clock; the simulated
market and a replay run it from a start instant at a pace (market seconds per wall second)."""

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PacedClock:
    """``now_ms() = market_start_ms + (wall elapsed since creation) × speed``."""

    market_start_ms: int
    speed: float = 1.0
    _wall_start: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"clock speed must be positive, not {self.speed}")

    def now_ms(self) -> int:
        elapsed = time.monotonic() - self._wall_start
        return self.market_start_ms + int(elapsed * self.speed * 1000.0)

    def wall_seconds_until(self, market_ms: int) -> float:
        """Wall-clock seconds until the market clock reaches ``market_ms`` (≤ 0: passed)."""
        return (market_ms - self.now_ms()) / 1000.0 / self.speed
