"""A seeded simulated market for offline demos and tests: no network, fully reproducible.

Model, per bar:
- a regime (uptrend / downtrend / range) from a sticky 3-state Markov chain; each regime
  has its own drift and base volatility;
- the log return is drift + a GARCH(1,1) shock: the conditional variance follows
  omega + alpha·shock² + beta·variance, with omega set so the long-run variance is the
  regime's base variance, so volatility clusters and shifts with the regime; shocks are
  Student-t (fat tails) scaled to unit variance;
- open = previous close; high and low extend past the body by exponential wicks scaled
  by the bar's volatility; volume is lognormal, scaled up with volatility and |return|.

Both drift and volatility scale with √(bar minutes), and a regime lasts ~50 bars whatever
the timeframe: charts look alike at every timeframe, which is what a demo wants. It is not
a calibrated model of how real markets scale with time.

The same arguments give bitwise the same candles in any process: the generator is seeded
from a SeedSequence over the seed, a SHA-256 of the symbol (Python's hash() is salted per
process), the timeframe and the start time.
"""

import bisect
import hashlib
import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from core.candles import CandleWindow, FloatArray, IntArray
from core.settings import validate_symbol
from core.timeframes import timeframe_ms


class Regime(IntEnum):
    UPTREND = 0
    DOWNTREND = 1
    RANGE = 2


@dataclass(frozen=True)
class SimulatedMarket:
    """The candles and, per candle, the Regime that generated it (for tests and demos)."""

    candles: CandleWindow
    regimes: IntArray


# Row = current regime, column = next (Regime order). Staying has probability 0.98, so a
# regime lasts 50 bars on average; trends mostly end in a range rather than reversing.
_TRANSITIONS = np.array(
    [
        [0.980, 0.005, 0.015],
        [0.005, 0.980, 0.015],
        [0.010, 0.010, 0.980],
    ]
)
# The chain's stationary distribution (π·P = π), so the first bar is not biased.
_STATIONARY = np.array([2 / 7, 2 / 7, 3 / 7])

# Per 1-minute bar (scaled by √minutes): drift of the log price and base volatility.
# Trend drifts are symmetric so long simulations do not sink or soar on average; sell-offs
# are more volatile than rallies.
_DRIFT = np.array([0.00014, -0.00014, 0.0])
_VOLATILITY = np.array([0.0010, 0.0014, 0.0008])

_GARCH_ALPHA = 0.10  # weight of the last squared shock
_GARCH_BETA = 0.85  # persistence of the variance; alpha + beta < 1 keeps it stationary
_STUDENT_DF = 5.0
_WICK_SCALE = 0.4  # mean wick beyond the body, in units of the bar's volatility
_VOLUME_SIGMA = 0.4  # log-volume noise
_VOLUME_RETURN_GAIN = 2.0  # volume grows by this much per bar-volatility of |return|
_NOTIONAL_PER_MINUTE_USD = 2_000_000.0

# Rough USD values of well-known assets: BTC/USDT starts near 30,000, ETH/BTC near 0.067.
_USD_VALUE = {
    "BTC": 30_000.0,
    "ETH": 2_000.0,
    "BNB": 300.0,
    "SOL": 25.0,
    "LTC": 90.0,
    "XRP": 0.5,
    "ADA": 0.35,
    "DOGE": 0.07,
    "USDT": 1.0,
    "USDC": 1.0,
    "USD": 1.0,
    "EUR": 1.08,
}
# Unknown assets get a USD value, log-uniform in this range, from a hash of their name.
_UNKNOWN_USD_RANGE = (0.05, 500.0)


def simulate_market(
    symbol: str,
    timeframe: str,
    start_open_time_ms: int,
    count: int,
    seed: int,
    start_price: float | None = None,
) -> SimulatedMarket:
    """``count`` consecutive closed candles from ``start_open_time_ms`` (aligned to the
    timeframe), and the regime of each. Prices start at ``start_price`` or the symbol's
    default_start_price."""
    step = timeframe_ms(timeframe)
    _check_arguments(symbol, start_open_time_ms, step, count, seed, start_price)
    price = default_start_price(symbol) if start_price is None else start_price
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, _stable_hash(symbol), step, start_open_time_ms])
    )
    scale = math.sqrt(step / 60_000)
    regimes = _regime_path(rng, count)
    log_return, volatility = _garch_returns(rng, regimes, scale)
    close = price * np.exp(np.cumsum(log_return))
    open_ = np.concatenate(([price], close))[:-1]  # each bar opens at the last close
    body_high, body_low = np.maximum(open_, close), np.minimum(open_, close)
    high = body_high * np.exp(rng.exponential(_WICK_SCALE, count) * volatility)
    low = body_low * np.exp(-rng.exponential(_WICK_SCALE, count) * volatility)
    volume = _volume(rng, symbol, step, log_return, volatility, scale)
    candles = CandleWindow(
        symbol=symbol,
        timeframe=timeframe,
        timeframe_ms=step,
        open_time=start_open_time_ms + step * np.arange(count, dtype=np.int64),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        sources=("sim",),
    )
    return SimulatedMarket(candles=candles, regimes=regimes)


def simulate_candles(
    symbol: str,
    timeframe: str,
    start_open_time_ms: int,
    count: int,
    seed: int,
    start_price: float | None = None,
) -> CandleWindow:
    """The candles of simulate_market (sources ("sim",)), without the regime path."""
    return simulate_market(symbol, timeframe, start_open_time_ms, count, seed, start_price).candles


def default_start_price(symbol: str) -> float:
    """USD value of the base over that of the quote, e.g. BTC/USDT ≈ 30,000."""
    base, _, quote = validate_symbol(symbol).partition("/")
    return _usd_value(base) / _usd_value(quote)


def _regime_path(rng: np.random.Generator, count: int) -> IntArray:
    """A Markov chain path: each step picks the next regime from its transition row."""
    cumulative: list[list[float]] = np.cumsum(_TRANSITIONS, axis=1).tolist()
    draws: list[float] = rng.random(count).tolist()
    last = len(Regime) - 1
    # A cumulative row ends at 1 up to rounding; min() keeps a draw above it in range.
    regime = min(bisect.bisect_right(np.cumsum(_STATIONARY).tolist(), rng.random()), last)
    path: list[int] = []
    for draw in draws:
        path.append(regime)
        regime = min(bisect.bisect_right(cumulative[regime], draw), last)
    return np.array(path, dtype=np.int64)


def _garch_returns(
    rng: np.random.Generator, regimes: IntArray, scale: float
) -> tuple[FloatArray, FloatArray]:
    """Log returns and each bar's conditional volatility (both per bar)."""
    count = len(regimes)
    shocks = rng.standard_t(_STUDENT_DF, count) * math.sqrt((_STUDENT_DF - 2) / _STUDENT_DF)
    base_variance = ((_VOLATILITY * scale) ** 2)[regimes].tolist()
    units: list[float] = shocks.tolist()
    # Start at the first regime's long-run level, as if the past were at equilibrium.
    variance = previous_square = base_variance[0] if count else 0.0
    variances: list[float] = []
    innovations: list[float] = []
    keep = 1.0 - _GARCH_ALPHA - _GARCH_BETA
    for long_run, unit in zip(base_variance, units, strict=True):
        # omega = long-run variance × (1 - alpha - beta): the variance reverts to the
        # current regime's base level, so a regime change shifts the volatility too.
        variance = keep * long_run + _GARCH_ALPHA * previous_square + _GARCH_BETA * variance
        shock = math.sqrt(variance) * unit
        previous_square = shock * shock
        variances.append(variance)
        innovations.append(shock)
    volatility = np.sqrt(np.array(variances))
    return (_DRIFT * scale)[regimes] + np.array(innovations), volatility


def _volume(
    rng: np.random.Generator,
    symbol: str,
    step: int,
    log_return: FloatArray,
    volatility: FloatArray,
    scale: float,
) -> FloatArray:
    """Lognormal volume in base units, higher in volatile regimes and on large moves."""
    base_asset = symbol.partition("/")[0]
    typical = _NOTIONAL_PER_MINUTE_USD * (step / 60_000) / _usd_value(base_asset)
    reference_volatility = float(_VOLATILITY[Regime.RANGE]) * scale
    noise = np.exp(rng.normal(-0.5 * _VOLUME_SIGMA**2, _VOLUME_SIGMA, len(log_return)))
    activity = volatility / reference_volatility
    surprise = 1.0 + _VOLUME_RETURN_GAIN * np.abs(log_return) / volatility
    return typical * noise * activity * surprise


def _usd_value(asset: str) -> float:
    known = _USD_VALUE.get(asset)
    if known is not None:
        return known
    low, high = _UNKNOWN_USD_RANGE
    fraction = _stable_hash(asset) / 2**64
    return math.exp(math.log(low) + fraction * (math.log(high) - math.log(low)))


def _stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike the salted hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _check_arguments(
    symbol: str, start: int, step: int, count: int, seed: int, start_price: float | None
) -> None:
    validate_symbol(symbol)
    if start < 0 or start % step:
        raise ValueError(f"start_open_time_ms {start} must be ≥ 0 and a multiple of {step}")
    if count < 0:
        raise ValueError(f"count must be ≥ 0, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0, got {seed}")
    if start_price is not None and not (math.isfinite(start_price) and start_price > 0):
        raise ValueError(f"start_price must be a positive number, got {start_price}")
