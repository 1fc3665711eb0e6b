"""Timeframes and timestamps. Internally every instant is integer epoch milliseconds, UTC."""

import functools
from datetime import UTC, datetime

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 3 * 60_000,
    "5m": 5 * 60_000,
    "15m": 15 * 60_000,
    "30m": 30 * 60_000,
    "1h": 3_600_000,
    "2h": 2 * 3_600_000,
    "4h": 4 * 3_600_000,
    "6h": 6 * 3_600_000,
    "12h": 12 * 3_600_000,
    "1d": 86_400_000,
}

# Epoch values below this are taken as seconds, not milliseconds (year 2001 in ms).
_MIN_EPOCH_MS = 1_000_000_000_000


def timeframe_ms(timeframe: str) -> int:
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        allowed = ", ".join(TIMEFRAME_MS)
        raise ValueError(f"unknown timeframe {timeframe!r}; use one of: {allowed}") from None


# The last millisecond of 9999-12-31: beyond it a timestamp cannot be formatted.
_MAX_EPOCH_MS = 253_402_300_799_999


def parse_timestamp(text: str | int | float) -> int:
    """ISO-8601 (a naive time is UTC) or epoch milliseconds → epoch ms.

    Epoch seconds are refused rather than guessed: the unit must be unambiguous.
    """
    if isinstance(text, int | float):
        return _epoch_ms(float(text), str(text))
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty timestamp")
    try:
        return _epoch_ms(float(stripped), stripped)
    except ValueError as not_numeric:
        if "epoch" in str(not_numeric):
            raise
    iso = stripped[:-1] + "+00:00" if stripped.endswith(("Z", "z")) else stripped
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"timestamp {text!r} is neither ISO-8601 (2023-01-20T12:00:00Z) nor epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _in_range(round(moment.timestamp() * 1000), text)


def _epoch_ms(value: float, original: str) -> int:
    if value != value or not value.is_integer():
        raise ValueError(f"epoch timestamp {original!r} must be whole milliseconds")
    if abs(value) < _MIN_EPOCH_MS:
        raise ValueError(f"epoch timestamp {original!r} looks like seconds; give milliseconds")
    return _in_range(int(value), original)


def _in_range(epoch_ms: int, original: str | int | float) -> int:
    """Instants a record can hold and print: 1970 to the end of year 9999."""
    if not 0 <= epoch_ms <= _MAX_EPOCH_MS:
        raise ValueError(
            f"timestamp {original!r} is outside 1970-01-01 … 9999-12-31 "
            f"(epoch ms 0 … {_MAX_EPOCH_MS})"
        )
    return epoch_ms


@functools.lru_cache(maxsize=8192)
def format_timestamp(epoch_ms: int) -> str:
    """Epoch ms → '2023-01-20T12:00:00Z' (milliseconds shown only when present).

    Cached: a decision states the same few instants many times (as_of, the last close), and
    a backtest steps through them in order; formatting one costs ≈ 2 µs, a hit ≈ 0.1."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if epoch_ms % 1000:
        text += f".{epoch_ms % 1000:03d}"
    return text + "Z"


def floor_to(epoch_ms: int, step_ms: int) -> int:
    return epoch_ms - epoch_ms % step_ms


def now_ms() -> int:
    return round(datetime.now(tz=UTC).timestamp() * 1000)
