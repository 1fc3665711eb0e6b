"""The per-key rate limit of mutating routes: a token bucket per key."""

import threading
import time
from dataclasses import dataclass

from core.settings import ApiSettings


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``mutation_burst`` at once, refilled at ``mutations_per_minute``."""

    def __init__(self, settings: ApiSettings) -> None:
        self._rate = settings.mutations_per_minute / 60.0
        self._burst = float(settings.mutation_burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """Spend one token; returns 0, or the seconds until one is there (nothing spent)."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(key_id, _Bucket(self._burst, now))
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate
