"""The backtest broker: paper trading's rules (execution.paper_rules) on one candle series held
in memory, so a backtest runs at the speed of its arithmetic, not of its database.

It trades as PaperBroker would on the same candles: an order fills at the open of the first
candle opening at or after its ``not_before`` (the decision's as_of), booked once that candle
has closed, moved against it by half the spread plus market impact, with the taker fee; the
control state is asked at submission and again at the fill. The book is replayed from the
fills, each position marked at the last close of the series.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from core.candles import CandleWindow
from core.settings import PaperSettings
from core.timeframes import floor_to
from core.trading import FillView, OrderOutcome, OrderRequest, OrderView, PortfolioView
from execution.accounting import FillRecord, Ledger, replay
from execution.order_rules import check_request, control_refusal
from execution.paper_rules import (
    DAY_MS,
    Book,
    FillTerms,
    fill_refusal,
    fit_order,
    portfolio_view,
    priced_fill,
    sellable,
    size_order,
    starting_balance,
)
from storage.control import ControlState
from storage.orders import Promised


@dataclass(frozen=True)
class _OpenOrder:
    request: OrderRequest
    quantity: float
    journal_seq: int
    reason: str

    def view(self) -> OrderView:
        return OrderView(
            id=self.request.client_order_id,
            client_order_id=self.request.client_order_id,
            symbol=self.request.symbol,
            side=self.request.side,
            quantity=self.quantity,
            status="open",
            reduce_only=self.request.reduce_only,
            journal_seq=self.journal_seq,
            reason=self.reason,
        )


class BacktestBroker:
    """execution.broker.BookKeepingBroker over ``series``; see the module docstring."""

    real_money = False

    def __init__(
        self,
        series: CandleWindow,
        settings: PaperSettings,
        control: Callable[[str], ControlState],
        name: str = "backtest",
    ) -> None:
        self.name = name
        self._series = series
        self._settings = settings
        self._control = control
        self._open: list[_OpenOrder] = []
        self._fills: list[FillView] = []
        self._ledger = Ledger()  # every fill booked so far, in booking order
        self._journal_seq = 0
        self._opening: tuple[int, int, Book] | None = None  # (day start, fills, book) cached

    @property
    def booked_fills(self) -> tuple[FillView, ...]:
        return tuple(self._fills)

    def submit(self, request: OrderRequest, now_ms: int) -> OrderOutcome:
        check_request(request)
        refusal = control_refusal(request, self._control(request.symbol))
        if refusal is not None:
            return OrderOutcome("refused", refusal)
        start = starting_balance(request.symbol, self._settings)
        if isinstance(start, OrderOutcome):
            return start
        pending = self._promised(None)
        sized = size_order(request, self._book(now_ms, now_ms), start, pending, self._fee)
        if isinstance(sized, str):
            return OrderOutcome("refused", sized)
        status, quantity, reason = fit_order(request, sized, None)
        self._journal_seq += 1
        if status == "open":
            self._open.append(_OpenOrder(request, quantity, self._journal_seq, reason))
        return OrderOutcome(
            "accepted" if status == "open" else "rejected",
            reason,
            request.client_order_id,
            quantity,
            self._journal_seq,
        )

    def process_fills(self, now_ms: int) -> list[FillView]:
        """Fill every open order whose fill candle has closed by ``now_ms``, in journal order."""
        new: list[FillView] = []
        still_open: list[_OpenOrder] = []
        for order in self._open:
            index = self._fill_candle(order.request, now_ms)
            if index is None:
                still_open.append(order)
                continue
            fill = self._fill(order, index)
            if fill is not None:
                new.append(fill)
        self._open = still_open
        return new

    def cancel_all(self, _reason: str, _now_ms: int) -> list[OrderView]:
        cancelled = [order.view() for order in self._open]
        self._open = []
        return cancelled

    def open_orders(self) -> list[OrderView]:
        return [order.view() for order in self._open]

    def ledger(self, until_ms: int | None = None) -> Ledger:
        if until_ms is None:
            return replay(_records(self._fills))
        return replay(_records(fill for fill in self._fills if fill.filled_at <= until_ms))

    def real_notional_today(self, _now_ms: int) -> float:
        """A backtest spends no real money."""
        return 0.0

    def fills(self, after_ms: int | None, until_ms: int) -> list[FillView]:
        """The fills booked in (after_ms, until_ms]; all up to until_ms when after_ms is None."""
        return [
            fill
            for fill in self._fills
            if (after_ms is None or fill.filled_at > after_ms) and fill.filled_at <= until_ms
        ]

    def portfolio(self, now_ms: int) -> PortfolioView:
        day_start = floor_to(now_ms, DAY_MS)
        open_buys: dict[str, float] = {}
        for promised in self._promised(now_ms):
            if promised.side == "buy":
                open_buys[promised.symbol] = promised.notional
        # A fill at 00:00 sharp belongs to the new day; a close at 00:00 is its price.
        opening = self._day_opening(day_start)
        now = self._book(now_ms, now_ms)
        return portfolio_view(now_ms, day_start, now, opening, open_buys, self._settings)

    # --- inside -------------------------------------------------------------------------------

    @property
    def _fee(self) -> float:
        return self._settings.taker_fee

    def _promised(self, placed_by: int | None) -> list[Promised]:
        """The open orders summed per symbol and side (storage.orders.promised)."""
        sums: dict[tuple[str, str], tuple[float, float]] = {}
        for order in self._open:
            request = order.request
            if placed_by is not None and request.not_before > placed_by:
                continue
            key = (request.symbol, request.side)
            quantity, notional = sums.get(key, (0.0, 0.0))
            sums[key] = (
                quantity + order.quantity,
                notional + order.quantity * request.reference_price,
            )
        return [Promised(symbol, side, *totals) for (symbol, side), totals in sums.items()]

    def _book(self, fills_until_ms: int, mark_at_ms: int, *, kept: bool = False) -> Book:
        """The ledger of the fills booked by ``fills_until_ms``, marked at ``mark_at_ms``;
        ``kept``: the book outlives this call, so it gets a ledger of its own."""
        if not kept and all(fill.filled_at <= fills_until_ms for fill in self._fills[-1:]):
            ledger = self._ledger  # booked in time order: every fill is in
        else:
            ledger = self.ledger(fills_until_ms)
        marks: dict[str, float] = {}
        index = self._last_closed(mark_at_ms)
        for symbol in ledger.positions:
            if index is not None:
                marks[symbol] = float(self._series.close[index])
                continue
            # Before its series has a close to show, the fill price is the newest price known.
            booked = [fill for fill in self._fills if fill.filled_at <= fills_until_ms]
            marks[symbol] = next(f.price for f in reversed(booked) if f.symbol == symbol)
        timeframes = dict.fromkeys(ledger.positions, self._series.timeframe)
        return Book(ledger, marks, timeframes)

    def _day_opening(self, day_start: int) -> Book:
        count = sum(1 for fill in self._fills if fill.filled_at <= day_start - 1)
        cached = self._opening
        if cached is None or cached[:2] != (day_start, count):
            cached = (day_start, count, self._book(day_start - 1, day_start, kept=True))
            self._opening = cached
        return cached[2]

    def _last_closed(self, at_ms: int) -> int | None:
        """The index of the newest candle closed by ``at_ms``."""
        series = self._series
        index = int(np.searchsorted(series.open_time, at_ms - series.timeframe_ms, "right")) - 1
        return index if index >= 0 else None

    def _fill_candle(self, request: OrderRequest, now_ms: int) -> int | None:
        """The first candle opening in [not_before, now - timeframe]: closed by now."""
        series = self._series
        index = int(np.searchsorted(series.open_time, request.not_before, "left"))
        if index >= len(series) or int(series.open_time[index]) > now_ms - series.timeframe_ms:
            return None
        return index

    def _fill(self, order: _OpenOrder, index: int) -> FillView | None:
        """Fill one order at candle ``index``; None when the control state cancels it or, for
        a sell, nothing is left to sell."""
        request, series = order.request, self._series
        if fill_refusal(request.side, request.reduce_only, self._control(request.symbol)):
            return None
        quantity = order.quantity
        if request.side == "sell":
            position = self._ledger.positions.get(request.symbol)
            sold = sellable(quantity, 0.0 if position is None else position.quantity)
            if sold is None:
                return None
            quantity = sold
        previous = self._last_closed(int(series.open_time[index]))
        traded = (
            0.0
            if previous is None
            else float(series.volume[previous]) * float(series.close[previous])
        )
        terms = FillTerms(
            request.client_order_id, request.symbol, request.side, request.reference_price
        )
        filled_at = int(series.open_time[index]) + series.timeframe_ms
        fill = priced_fill(
            terms, quantity, float(series.open[index]), traded, filled_at, self._settings
        )
        self._fills.append(fill)
        self._ledger.apply(_record(fill))
        return fill


def _record(fill: FillView) -> FillRecord:
    return FillRecord(fill.symbol, fill.side, fill.quantity, fill.price, fill.fee, fill.filled_at)


def _records(fills: Iterable[FillView]) -> Iterator[FillRecord]:
    return (_record(fill) for fill in fills)
