"""A run's report: a markdown page of its figures and three PNG plots a person reads at a
glance — equity against buy-and-hold, the drawdown, and the price with entries and exits."""

from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from backtest.metrics import Metrics
from backtest.run import BacktestResult
from core.timeframes import format_timestamp
from rl.report import reproduce_lines


def report_stem(result: BacktestResult) -> str:
    """BTC/USDT 5m → BTC_USDT-5m: the shared data's own file naming."""
    return f"{result.series.symbol.replace('/', '_')}-{result.series.timeframe}"


def write_report(
    result: BacktestResult, metrics: Metrics, folder: Path, command: str, data_sha256: str
) -> Path:
    """Write STEM.md and STEM-equity.png, STEM-drawdown.png, STEM-trades.png into ``folder``;
    ``data_sha256``: of the candle file's bytes, so a reader can tell it is the same file."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = report_stem(result)
    images = _plot_all(result, metrics, folder, stem)
    bars = result.bars
    series = result.series
    lines = [
        f"# Backtest: {series.symbol} {series.timeframe}",
        "",
        *reproduce_lines(command),
        f"- run `{result.run_id}`, config hash `{result.config_hash[:16]}…`",
        f"- data file sha256 `{data_sha256}`",
        f"- {len(bars)} bars decided, {format_timestamp(bars[0].as_of)} → "
        f"{format_timestamp(bars[-1].as_of)}, {result.bars_per_second:,.0f} bars/s "
        f"({result.seconds:.2f} s)",
        "- safety triggers "
        + ("on (as in live trading)" if result.triggers_enabled else "**off** (research run)"),
        "",
        *(f"![{title}]({image.name})" for title, image in images),
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---:|",
        *_metric_rows(metrics),
        "",
        "## Trades by exit reason",
        "",
        "| exit reason | trades | wins | total PnL | mean PnL |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {row.reason} | {row.trades} | {row.wins} | {row.total_pnl:+.6g} | "
            f"{row.mean_pnl:+.6g} |"
            for row in metrics.exits
        ),
        *_open_position(result),
        "",
        "## Safety",
        "",
        *_safety_lines(result),
    ]
    path = folder / f"{stem}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _metric_rows(metrics: Metrics) -> list[str]:
    drawdown = metrics.max_drawdown
    fall = f"{drawdown.depth:.2%}"
    if drawdown.peak_at is not None and drawdown.trough_at is not None:
        recovered = (
            format_timestamp(drawdown.recovered_at) if drawdown.recovered_at else "not recovered"
        )
        fall += (
            f" (peak {format_timestamp(drawdown.peak_at)}, trough "
            f"{format_timestamp(drawdown.trough_at)}, {recovered})"
        )
    rows = [
        ("equity", f"{metrics.start_equity:.6g} → {metrics.end_equity:.6g}"),
        ("total return", f"{metrics.total_return:+.2%}"),
        ("buy and hold (first to last close, no costs)", f"{metrics.buy_and_hold_return:+.2%}"),
        ("CAGR", _maybe(metrics.cagr, "{:+.2%}")),
        ("Sharpe (annualised)", _maybe(metrics.sharpe, "{:+.2f}")),
        ("Sortino (annualised)", _maybe(metrics.sortino, "{:+.2f}")),
        ("max drawdown", fall),
        ("Calmar", _maybe(metrics.calmar, "{:+.2f}")),
        ("trades (closed)", str(metrics.trade_count)),
        ("win rate", _maybe(metrics.win_rate, "{:.1%}")),
        ("profit factor", _profit_factor(metrics)),
        ("expectancy per trade", _maybe(metrics.expectancy, "{:+.6g}")),
        ("exposure (bars holding)", f"{metrics.exposure:.1%}"),
        ("fees paid", f"{metrics.fees_paid:.6g}"),
    ]
    return [f"| {name} | {value} |" for name, value in rows]


def _profit_factor(metrics: Metrics) -> str:
    if metrics.profit_factor is None and metrics.win_rate == 1.0:
        return "n/a (no losing trade)"
    return _maybe(metrics.profit_factor, "{:.2f}")


def _maybe(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def _open_position(result: BacktestResult) -> list[str]:
    last = result.bars[-1]
    if not last.holding:
        return []
    return [
        "",
        f"A position was still open at {format_timestamp(last.as_of)}: marked at the close.",
    ]


def _safety_lines(result: BacktestResult) -> list[str]:
    if not result.triggers_enabled:
        return ["The auto-pause triggers were switched off for this run (`--no-triggers`)."]
    trips = Counter(name for bar in result.bars for name in bar.trips)
    failed = Counter(name for bar in result.bars for name in bar.failed_checks)
    lines = ["| trigger | trips |", "|---|---:|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(trips.items())] or ["| none | 0 |"]
    lines += ["", "| check | bars it failed |", "|---|---:|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(failed.items())] or ["| none | 0 |"]
    pauses = [change for change in result.control.changes if change.state == "PAUSED"]
    lines += ["", f"{len(pauses)} pauses recorded by the triggers during the run."]
    return lines


def _plot_all(
    result: BacktestResult, metrics: Metrics, folder: Path, stem: str
) -> list[tuple[str, Path]]:
    bars = result.bars
    times = np.array([bar.as_of for bar in bars], dtype="datetime64[ms]")
    equity = np.array([bar.equity for bar in bars])
    closes = np.array([bar.close for bar in bars])
    title = f"{result.series.symbol} {result.series.timeframe}"

    figure, axes = plt.subplots(figsize=(10, 4))
    axes.plot(times, equity, label=f"decision path {metrics.total_return:+.2%}")
    hold = metrics.start_equity * closes / closes[0]
    axes.plot(times, hold, label=f"buy and hold {metrics.buy_and_hold_return:+.2%}", alpha=0.7)
    axes.set(title=f"{title}: equity", ylabel=result.series.symbol.partition("/")[2])
    axes.legend()
    equity_path = _save(figure, folder / f"{stem}-equity.png")

    figure, axes = plt.subplots(figsize=(10, 2.5))
    fall = equity / np.maximum.accumulate(equity) - 1.0
    axes.fill_between(times, fall * 100.0, 0.0, color="tab:red", alpha=0.4)
    axes.set(title=f"{title}: drawdown {metrics.max_drawdown.depth:.2%} at worst", ylabel="%")
    drawdown_path = _save(figure, folder / f"{stem}-drawdown.png")

    figure, axes = plt.subplots(figsize=(10, 4))
    axes.plot(times, closes, color="grey", linewidth=0.8, label="close")
    for side, marker, color in (("buy", "^", "tab:green"), ("sell", "v", "tab:red")):
        fills = [fill for fill in result.fills if fill.side == side]
        axes.scatter(
            np.array([fill.filled_at for fill in fills], dtype="datetime64[ms]"),
            [fill.price for fill in fills],
            marker=marker,
            color=color,
            label=f"{'entries' if side == 'buy' else 'exits'} ({len(fills)})",
            zorder=3,
        )
    axes.set(title=f"{title}: price, entries and exits (at their fills)")
    axes.legend()
    trades_path = _save(figure, folder / f"{stem}-trades.png")
    return [
        ("equity against buy and hold", equity_path),
        ("drawdown", drawdown_path),
        ("price with entries and exits", trades_path),
    ]


def _save(figure: Figure, path: Path) -> Path:
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
