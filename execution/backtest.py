"""The backtest broker: paper trading's rules (execution.paper_rules) on one candle series held
in memory, so a backtest runs at the speed of its arithmetic, not of its database.

It trades as PaperBroker would on the same candles: an order fills at the open of the first
candle opening at or after its ``not_before`` (the decision's as_of), booked once that candle
has closed, moved against it by half the spread plus market impact, with the taker fee; the
control state is asked at submission and again at the fill. The book is replayed from the
fills, each position marked at the last close of the series.

Every bar reads the book, and most bars change nothing in it: the fills are kept in time
order (a read finds its own by bisection), the ledger of all of them is kept up to date fill
by fill, and a read that finds the same fills, day, open buys and mark as the one before gets
that one's view again, stamped with its own instant.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from core.candles import CandleWindow
from core.settings import PaperSettings
from core.timeframes import floor_to
from core.trading import FillView, OrderOutcome, OrderRequest, OrderView, PortfolioView, Side
from execution.accounting import FillRecord, Ledger, replay
from execution.order_rules import check_request, control_refusal
from execution.paper_rules import (
    DAY_MS,
    Book,
    FillTerms,
    booked_at,
    fill_refusal,
    fill_window,
    fit_order,
    portfolio_view,
    priced_fill,
    remarked,
    sellable,
    size_order,
    starting_balance,
    traded_value,
)
from storage.control import ControlState
from storage.orders import promised_of


@dataclass(frozen=True)
class _OpenOrder:
    request: OrderRequest
    quantity: float
    journal_seq: int
    reason: str

    # What storage.orders.promised_of sums.
    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def reference_price(self) -> float:
        return self.request.reference_price

    @property
    def not_before(self) -> int:
        return self.request.not_before

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


@dataclass
class _Read:
    """The last portfolio read and what it was made of: a read of the same fills, day and
    open buys is that view again, its marks moved when a new close has come."""

    # The fills filled by the read's instant: fills are never taken back, so as many again
    # are the same ones.
    booked: int
    day_start: int
    open_buys: dict[str, float]
    mark: int | None  # the candle the positions are marked at (None: flat, or no close yet)
    view: PortfolioView


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
        # Python lists: a bisection or an index of one costs a fraction of numpy's per call.
        self._open_times: list[int] = series.open_time.tolist()
        self._closes: list[float] = series.close.tolist()
        self._open: list[_OpenOrder] = []
        self._fills: list[FillView] = []  # in time order (booking order among equal times)
        self._fill_times: list[int] = []  # their filled_at, for the bisections
        self._ledger = Ledger()  # replayed from every fill booked so far, in that order
        # The ledger of the first few fills, moved forward as the days pass: the day's
        # opening book is replayed from the fills it has not seen yet, not from the first.
        self._early = Ledger()
        self._early_fills = 0
        self._journal_seq = 0
        self._opening: tuple[int, int, Book] | None = None  # (day start, fills by then, book)
        self._read: _Read | None = None

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
        pending = promised_of(self._open)
        book = self._book(self._booked_by(now_ms), self._last_closed(now_ms))
        sized = size_order(request, book, start, pending, self._fee)
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
        booked = len(self._fills) if until_ms is None else self._booked_by(until_ms)
        return replay(_records(self._fills[:booked]))

    def real_notional_today(self, _now_ms: int) -> float:
        """A backtest spends no real money."""
        return 0.0

    def fills(self, after_ms: int | None, until_ms: int) -> list[FillView]:
        """The fills booked in (after_ms, until_ms]; all up to until_ms when after_ms is None."""
        first = 0 if after_ms is None else self._booked_by(after_ms)
        return self._fills[first : self._booked_by(until_ms)]

    def portfolio(self, now_ms: int) -> PortfolioView:
        day_start = floor_to(now_ms, DAY_MS)
        booked = self._booked_by(now_ms)
        open_buys = self._open_buys(now_ms) if self._open else {}
        read = self._read
        if (
            read is not None
            and (read.booked, read.day_start) == (booked, day_start)
            and read.open_buys == open_buys
        ):
            if not read.view.holdings:
                return _stamped(read.view, now_ms)
            mark = self._last_closed(now_ms)
            if mark == read.mark:
                return _stamped(read.view, now_ms)
            # Held, and a new close: only what the marks move is built again.
            read.mark, read.view = mark, remarked(read.view, now_ms, self._book(booked, mark))
            return read.view
        mark = self._last_closed(now_ms)
        now = self._book(booked, mark)
        # A fill at 00:00 sharp belongs to the new day; a close at 00:00 is its price.
        opening = self._day_opening(day_start)
        view = portfolio_view(now_ms, day_start, now, opening, open_buys, self._settings)
        self._read = _Read(booked, day_start, open_buys, mark, view)
        return view

    # --- inside -------------------------------------------------------------------------------

    @property
    def _fee(self) -> float:
        return self._settings.taker_fee

    def _open_buys(self, now_ms: int) -> dict[str, float]:
        """Per symbol, the notional of the open buys placed by ``now_ms``."""
        promised = promised_of(self._open, placed_by=now_ms)
        return {total.symbol: total.notional for total in promised if total.side == "buy"}

    def _booked_by(self, at_ms: int) -> int:
        """How many of the fills (in time order) were filled by ``at_ms``."""
        return bisect_right(self._fill_times, at_ms)

    def _book(self, booked: int, mark: int | None) -> Book:
        """The book of the first ``booked`` fills, marked at the close of candle ``mark``."""
        if booked == len(self._fills):
            ledger = self._ledger
        else:
            ledger = replay(_records(self._fills[:booked]))
        return self._marked(ledger, booked, mark)

    def _marked(self, ledger: Ledger, booked: int, mark: int | None) -> Book:
        """``ledger`` (of the first ``booked`` fills) marked at the close of candle ``mark``."""
        marks: dict[str, float] = {}
        for symbol in ledger.positions:
            if mark is not None:
                marks[symbol] = self._closes[mark]
                continue
            # Before its series has a close to show, the fill price is the newest price known.
            known = reversed(self._fills[:booked])
            marks[symbol] = next(fill.price for fill in known if fill.symbol == symbol)
        timeframes = dict.fromkeys(ledger.positions, self._series.timeframe)
        return Book(ledger, marks, timeframes)

    def _day_opening(self, day_start: int) -> Book:
        """The book at the start of the day, kept until the day or its fills change."""
        booked = self._booked_by(day_start - 1)
        cached = self._opening
        if cached is None or cached[:2] != (day_start, booked):
            if booked < self._early_fills:
                self._early, self._early_fills = Ledger(), 0
            for fill in self._fills[self._early_fills : booked]:
                self._early.apply(_record(fill))
            self._early_fills = booked
            # The early ledger moves on only here, and the book marked on it with it.
            opening = self._marked(self._early, booked, self._last_closed(day_start))
            cached = (day_start, booked, opening)
            self._opening = cached
        return cached[2]

    def _last_closed(self, at_ms: int) -> int | None:
        """The index of the newest candle closed by ``at_ms``."""
        index = bisect_right(self._open_times, at_ms - self._series.timeframe_ms) - 1
        return index if index >= 0 else None

    def _fill_candle(self, request: OrderRequest, now_ms: int) -> int | None:
        """The index of the order's fill candle (paper_rules.fill_window), once it has closed."""
        earliest, latest = fill_window(request.not_before, now_ms, self._series.timeframe_ms)
        index = bisect_left(self._open_times, earliest)
        if index >= len(self._open_times) or self._open_times[index] > latest:
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
        open_time = self._open_times[index]
        previous = self._last_closed(open_time)
        traded = (
            0.0
            if previous is None
            else traded_value(float(series.volume[previous]), self._closes[previous])
        )
        terms = FillTerms(
            request.client_order_id, request.symbol, request.side, request.reference_price
        )
        filled_at = booked_at(open_time, series.timeframe_ms)
        fill = priced_fill(
            terms, quantity, float(series.open[index]), traded, filled_at, self._settings
        )
        self._book_fill(fill)
        return fill

    def _book_fill(self, fill: FillView) -> None:
        """Keep the fills in time order and the ledger replayed from them."""
        at = bisect_right(self._fill_times, fill.filled_at)
        self._fills.insert(at, fill)
        self._fill_times.insert(at, fill.filled_at)
        if at == len(self._fills) - 1:
            self._ledger.apply(_record(fill))
            return
        # Filled before one booked already (an order placed late with an early not_before):
        # the ledgers are replayed in time order, as a read of any instant replays them.
        self._ledger = replay(_records(self._fills))
        if at < self._early_fills:
            self._early, self._early_fills = Ledger(), 0


def _stamped(view: PortfolioView, as_of: int) -> PortfolioView:
    """``view`` read again at ``as_of``: nothing in it changed but its instant."""
    # Positional: the backtest stamps a view every bar, and keywords cost a third more.
    return PortfolioView(
        as_of,
        view.day_start,
        view.currencies,
        view.holdings,
        view.closed_trades,
        view.open_buy_notional,
    )


def _record(fill: FillView) -> FillRecord:
    return FillRecord(fill.symbol, fill.side, fill.quantity, fill.price, fill.fee, fill.filled_at)


def _records(fills: Iterable[FillView]) -> Iterator[FillRecord]:
    return (_record(fill) for fill in fills)
