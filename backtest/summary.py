"""From a finished run to its figures: the closed trades with their exit reasons, the metrics."""

from backtest.metrics import Metrics, TradeOutcome, compute_metrics
from backtest.run import BacktestResult


def trades_of(result: BacktestResult) -> list[TradeOutcome]:
    """The run's closed trades, oldest first, each with the reason of the sell that closed it:
    the signal that pushed that decision's score down the most."""
    closing = {fill.filled_at: fill.order_id for fill in result.fills if fill.side == "sell"}
    signal_of = {bar.order_id: bar.exit_signal for bar in result.bars if bar.order_id}
    return [
        TradeOutcome(
            opened_at=trade.opened_at,
            closed_at=trade.closed_at,
            pnl=trade.pnl,
            exit_reason=f"sell signal ({signal_of[closing[trade.closed_at]]})",
        )
        for trade in result.broker.ledger().closed_trades
    ]


def metrics_of(result: BacktestResult) -> Metrics:
    bars = result.bars
    return compute_metrics(
        times=[bar.as_of for bar in bars],
        equity=[bar.equity for bar in bars],
        holding=[bar.holding for bar in bars],
        closes=[bar.close for bar in bars],
        trades=trades_of(result),
        fees=[fill.fee for fill in result.fills],
    )
