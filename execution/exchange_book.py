"""An exchange account's book: the exchange's balances now, marked at the last closes, with
the day's flows and the closed trades from the stored fills.

The book at 00:00 UTC is today's balances less what today's stored fills moved; a deposit or
withdrawal today therefore counts as profit or loss of the day (the exchange is not asked
for transfers). A coin held by two configured symbols (ETH in ETH/USDT and ETH/BTC) is
counted in each.
"""

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.settings import Settings
from core.timeframes import floor_to
from core.trading import CurrencyView, HoldingView, PortfolioView, quote_of
from execution.accounting import DUST, equity_fraction, replay_adopting
from execution.order_rules import fill_records
from storage import orders

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Balances:
    """Per currency, as the exchange reports it: free to trade, and in total (with locked)."""

    free: dict[str, float]
    total: dict[str, float]


class UnpricedHoldingError(ValueError):
    """A coin is held and no price is stored to value it at."""


def exchange_portfolio(
    session: Session, broker: str, settings: Settings, balances: Balances, now_ms: int
) -> PortfolioView:
    day_start = floor_to(now_ms, DAY_MS)
    stored = orders.fills(session, broker, until_ms=now_ms)
    ledger = replay_adopting(fill_records(stored))
    cash_today: defaultdict[str, float] = defaultdict(float)
    bought_today: defaultdict[str, float] = defaultdict(float)
    newest_price: dict[str, float] = {}
    for fill in stored:
        newest_price[fill.symbol] = fill.price
        if fill.filled_at < day_start:
            continue
        sign = 1.0 if fill.side == "buy" else -1.0
        cash_today[quote_of(fill.symbol)] -= sign * fill.quantity * fill.price + fill.fee
        bought_today[fill.symbol] += sign * fill.quantity
    timeframe = settings.timeframes[0]

    def mark(symbol: str, at_ms: int) -> float | None:
        candle = orders.last_closed_candle(session, symbol, timeframe, at_ms)
        return candle.close if candle is not None else newest_price.get(symbol)

    value_now: defaultdict[str, float] = defaultdict(float)
    value_at_start: defaultdict[str, float] = defaultdict(float)
    held: dict[str, tuple[float, float]] = {}
    for symbol in settings.symbols:
        quantity = balances.total.get(symbol.partition("/")[0], 0.0)
        at_start = quantity - bought_today[symbol]
        if quantity <= DUST and at_start <= DUST:
            continue
        price = mark(symbol, now_ms)
        if price is None:
            raise UnpricedHoldingError(
                f"{quantity:.10g} {symbol.partition('/')[0]} held on the exchange and no "
                f"{timeframe} close of {symbol} stored to value it: fetch its candles first"
            )
        quote = quote_of(symbol)
        value_now[quote] += quantity * price
        value_at_start[quote] += at_start * (mark(symbol, day_start) or price)
        if quantity > DUST:
            held[symbol] = (quantity, price)
    currencies: dict[str, CurrencyView] = {}
    for quote in sorted({quote_of(symbol) for symbol in settings.symbols}):
        cash = balances.total.get(quote, 0.0)
        equity = cash + value_now[quote]
        currencies[quote] = CurrencyView(
            quote=quote,
            cash=cash,
            equity=equity,
            day_start_equity=cash - cash_today[quote] + value_at_start[quote],
            exposure_fraction=equity_fraction(value_now[quote], equity),
        )
    holdings: dict[str, HoldingView] = {}
    for symbol, (quantity, price) in sorted(held.items()):
        position = ledger.positions.get(symbol)
        # Coins no stored fill bought are valued at their mark: their cost is not known.
        cost = position.cost if position is not None else quantity * price
        holdings[symbol] = HoldingView(
            symbol=symbol,
            timeframe=timeframe,
            quantity=quantity,
            cost=cost,
            mark_price=price,
            fraction=equity_fraction(quantity * price, currencies[quote_of(symbol)].equity),
        )
    open_buys = {
        promised.symbol: promised.notional
        for promised in orders.promised(session, broker, placed_by=now_ms)
        if promised.side == "buy"
    }
    return PortfolioView(
        as_of=now_ms,
        day_start=day_start,
        currencies=currencies,
        holdings=holdings,
        closed_trades=tuple(ledger.closed_trades),
        open_buy_notional=open_buys,
    )
