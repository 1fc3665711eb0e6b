"""`sigmax backtest` and `sigmax lookahead`: the decision path over a candle file.

Registered by api/cli.py at its end, like api/cli_rl.py (import api.cli first).
"""

import dataclasses
import functools
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from agents.providers import chat_backends
from api.cli import Context, _symbol, _timeframe, _timestamp
from api.cli_rl import read_series, registry_of
from backtest.lookahead import LookaheadReport, lookahead
from backtest.report import write_report
from backtest.run import decided_indices, run_backtest
from backtest.summary import metrics_of
from core.candles import CandleWindow
from core.hashing import sha256_hex
from core.market_features import MIN_BARS
from core.settings import Settings
from core.timeframes import format_timestamp, now_ms
from core.trading import quote_of
from core.version import ENGINE_VERSION
from rl.registry import ActiveModel
from storage.backtests import BacktestRunSummary, BacktestStore
from storage.model_replies import ModelReplyStore

BACKTESTS_FOLDER = "backtests"
Command = TypeVar("Command", bound=Callable[..., Any])


def _optional(
    check: Callable[[click.Context, click.Parameter, str], str],
) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        return None if value is None else check(ctx, param, value)

    return callback


Costs = tuple[float | None, float | None, float | None]  # fee, slippage, balance


@dataclass(frozen=True)
class OpenedSeries:
    series: CandleWindow
    settings: Settings  # the run's: the configured ones with its costs and balance
    decided: int  # how many bars it decides
    data_sha256: str  # of the file's bytes, as read


@dataclass(frozen=True)
class SeriesArgs:
    """What both commands are told about the series, its span and the output."""

    data_file: Path
    symbol: str | None
    timeframe: str | None
    start_ms: int | None
    end_ms: int | None
    no_triggers: bool
    as_json: bool

    def open(self, settings: Settings, costs: Costs = (None, None, None)) -> OpenedSeries:
        """The series checked in full, the run's settings and how many bars it decides."""
        # Read once: the bytes hashed are the bytes decided on.
        data = self.data_file.read_bytes()
        series = read_series(self.data_file, self.symbol, self.timeframe, data)
        run_settings = backtest_settings(settings, quote_of(series.symbol), *costs)
        decided = len(decided_indices(series, self.start_ms, self.end_ms))
        if decided == 0:
            raise click.ClickException(
                f"no bar of {series.symbol} {series.timeframe} to decide: the indicators need "
                f"{MIN_BARS} candles before the first decision; widen --from/--to or use a "
                "longer file"
            )
        return OpenedSeries(series, run_settings, decided, sha256_hex(data))


def _series_options(command: Command) -> Command:
    """The options both commands read their series and its span with, handed to the command
    as one SeriesArgs (``args``)."""

    @functools.wraps(command)
    def with_series(**kwargs: Any) -> Any:
        fields = {field.name: kwargs.pop(field.name) for field in dataclasses.fields(SeriesArgs)}
        return command(args=SeriesArgs(**fields), **kwargs)

    options = (
        click.option(
            "--data",
            "data_file",
            required=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A candle file: CSV (timestamp,open,high,low,close,volume) or feather.",
        ),
        click.option("--symbol", callback=_optional(_symbol), help="Default: from the file name."),
        click.option(
            "--timeframe", callback=_optional(_timeframe), help="Default: from the file name."
        ),
        click.option("--from", "start_ms", callback=_timestamp, help="First as_of decided."),
        click.option("--to", "end_ms", callback=_timestamp, help="Last as_of decided."),
        click.option(
            "--no-triggers",
            is_flag=True,
            help="Research only: leave the auto-pause triggers out (recorded as off).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    )
    wrapped: Any = with_series
    for option in reversed(options):
        wrapped = option(wrapped)
    return cast(Command, wrapped)


def _progress(length: int, label: str) -> Any:
    return click.progressbar(length=length, label=label, file=sys.stderr)


def backtest_settings(
    settings: Settings,
    quote: str,
    fee: float | None,
    slippage: float | None,
    balance: float | None,
) -> Settings:
    """The configured settings with this run's paper costs and starting balance."""
    paper: dict[str, Any] = {}
    if fee is not None:
        paper["taker_fee"] = fee
    if slippage is not None:
        paper["spread_fraction"] = slippage
    if balance is not None:
        paper["starting_balances"] = {**settings.paper.starting_balances, quote: balance}
    elif quote not in settings.paper.starting_balances:
        raise click.ClickException(
            f"no paper balance in {quote}: pass --balance AMOUNT (in {quote}) or add one to "
            "SIGMAX_PAPER__STARTING_BALANCES"
        )
    updated = settings.paper.model_copy(update=paper)
    return settings.model_copy(update={"paper": updated})


@click.command("backtest")
@_series_options
@click.option(
    "--fee",
    type=click.FloatRange(0.0, 0.1, max_open=True),
    help="Taker fee per fill, a fraction (default: paper.taker_fee).",
)
@click.option(
    "--slippage",
    type=click.FloatRange(0.0, 0.1, max_open=True),
    help="Half-spread paid on every fill, a fraction, before market impact "
    "(default: paper.spread_fraction).",
)
@click.option(
    "--balance",
    type=click.FloatRange(0.0, min_open=True),
    help="Starting balance in the quote currency (default: paper.starting_balances).",
)
@click.option("--profile", is_flag=True, help="Also show where the time went, step by step.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the markdown report and its plots (default: HOME/backtests/RUN_ID).",
)
@click.pass_obj
def backtest_command(
    context: Context,
    args: SeriesArgs,
    fee: float | None,
    slippage: float | None,
    balance: float | None,
    profile: bool,
    report_dir: Path | None,
) -> None:
    """Run the decision path (agents, debate, RL, sentiment, gate, paper fills at the next
    bar's open) over every bar of a candle file; write its report, then store the run."""
    opened = args.open(context.settings, (fee, slippage, balance))
    series, settings = opened.series, opened.settings
    rl_model = registry_of(settings).load_active()
    with _progress(opened.decided, "backtest") as bar:
        result = run_backtest(
            series,
            settings,
            rl_model,
            start_ms=args.start_ms,
            end_ms=args.end_ms,
            triggers=not args.no_triggers,
            progress=bar.update,
            # Model-backed roles as a decision has them, their answers from the replay cache.
            chat=chat_backends(settings.llm, ModelReplyStore(context.database)),
        )
    metrics = metrics_of(result)
    # The report first: a run is stored only once its report is written, so a report that
    # cannot be written leaves nothing behind but the refusal.
    folder = report_dir or settings.home / BACKTESTS_FOLDER / result.run_id
    command = "sigmax " + shlex.join(sys.argv[1:])
    try:
        report = write_report(result, metrics, folder, command, opened.data_sha256)
    except OSError as error:
        raise click.ClickException(
            f"cannot write the report to {error.filename or folder}: "
            f"{error.strerror or error}; pass --report DIR with a folder you can write "
            "(nothing was stored)"
        ) from None
    BacktestStore(context.database).save(
        BacktestRunSummary(
            id=result.run_id,
            created_at=now_ms(),
            symbol=series.symbol,
            timeframe=series.timeframe,
            data_file=str(args.data_file.resolve()),
            data_sha256=opened.data_sha256,
            first_as_of=result.bars[0].as_of,
            last_as_of=result.bars[-1].as_of,
            bars=len(result.bars),
            triggers_enabled=result.triggers_enabled,
            engine_version=ENGINE_VERSION,
            config_hash=result.config_hash,
            seconds=result.seconds,
            bars_per_second=result.bars_per_second,
            metrics=metrics.as_dict(),
        ),
        [bar._asdict() for bar in result.bars],
        result.fills,
    )
    if args.as_json:
        payload: dict[str, Any] = {
            "run_id": result.run_id,
            "symbol": series.symbol,
            "timeframe": series.timeframe,
            "bars": len(result.bars),
            "seconds": result.seconds,
            "bars_per_second": result.bars_per_second,
            "planned_bars": result.planned_bars,
            "triggers_enabled": result.triggers_enabled,
            "data_sha256": opened.data_sha256,
            "rl_model": rl_model.policy.model_id if isinstance(rl_model, ActiveModel) else None,
            "metrics": metrics.as_dict(),
            "report": str(report),
        }
        if profile:
            payload["profile_us_per_bar"] = result.profile_us_per_bar()
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(
        f"run {result.run_id}: {series.symbol} {series.timeframe}, {len(result.bars)} bars "
        f"{format_timestamp(result.bars[0].as_of)} → {format_timestamp(result.bars[-1].as_of)} "
        f"in {result.seconds:.2f} s ({result.bars_per_second:,.0f} bars/s)"
    )
    click.echo(
        f"return {metrics.total_return:+.2%} (buy and hold {metrics.buy_and_hold_return:+.2%}), "
        f"max drawdown {metrics.max_drawdown.depth:.2%}, {metrics.trade_count} closed trades, "
        f"fees {metrics.fees_paid:.6g}; triggers {'on' if result.triggers_enabled else 'OFF'}"
    )
    click.echo(f"report: {report}")
    if profile:
        click.echo(f"  {result.planned_bars} of {len(result.bars)} bars decided from the plan")
        for name, micros in result.profile_us_per_bar().items():
            click.echo(f"  {name:<24} {micros:10.1f} µs/bar")


@click.command("lookahead")
@_series_options
@click.option(
    "--samples",
    default=200,
    show_default=True,
    type=click.IntRange(1),
    help="How many bars to decide again with the future poisoned.",
)
@click.option("--seed", type=int, help="Which bars are drawn (default: the settings' seed).")
@click.pass_obj
def lookahead_command(
    context: Context,
    args: SeriesArgs,
    samples: int,
    seed: int | None,
) -> None:
    """Decide again at sampled bars with every later candle poisoned; report each decision
    that changed and the steps whose output changed. Exits 1 when any did."""
    opened = args.open(context.settings)
    settings = opened.settings
    with _progress(opened.decided, "lookahead") as bar:
        report = lookahead(
            opened.series,
            settings,
            registry_of(settings).load_active(),
            samples=samples,
            seed=settings.seed if seed is None else seed,
            start_ms=args.start_ms,
            end_ms=args.end_ms,
            triggers=not args.no_triggers,
            progress=bar.update,
            # Model-backed roles as a decision has them, their answers from the replay cache.
            chat=chat_backends(settings.llm, ModelReplyStore(context.database)),
        )
    if args.as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _echo_lookahead(report)
    if report.changed:
        sys.exit(1)


def _echo_lookahead(report: LookaheadReport) -> None:
    click.echo(
        f"{report.symbol} {report.timeframe}: {len(report.sampled)} decisions taken again with "
        f"the future poisoned ({len(report.ordered)} placing an order), "
        f"{len(report.changed)} changed"
    )
    for node, count in report.changes_by_node().items():
        click.echo(f"  {node:<12} {count}")
    for change in report.changed:
        click.echo(
            f"  {format_timestamp(change.as_of)}: {', '.join(change.nodes)} changed "
            f"({change.action} → {change.poisoned_action} with the future poisoned)"
        )


@click.group("backtests")
def backtests_group() -> None:
    """Read stored backtest runs back."""


@backtests_group.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.pass_obj
def list_backtests(context: Context, limit: int) -> None:
    """The newest runs first."""
    runs = BacktestStore(context.database).runs(limit)
    if not runs:
        click.echo("no backtest runs stored")
    for run in runs:
        click.echo(
            f"{run.id}  {run.symbol:<10} {run.timeframe:<4} {run.bars:>7} bars "
            f"{format_timestamp(run.first_as_of)} → {format_timestamp(run.last_as_of)}  "
            f"return {run.metrics['total_return']:+.2%}  "
            f"triggers {'on' if run.triggers_enabled else 'OFF'}"
        )


@backtests_group.command("show")
@click.argument("run_id")
@click.option("--bars", is_flag=True, help="Also list every decided bar.")
@click.pass_obj
def show_backtest(context: Context, run_id: str, bars: bool) -> None:
    """One run as JSON: what it ran on, its speed and metrics (and, with --bars, its bars)."""
    store = BacktestStore(context.database)
    run = store.get(run_id)
    if run is None:
        raise click.ClickException(
            f"no backtest run with id {run_id!r}: see `sigmax backtests list`"
        )
    payload: dict[str, Any] = {**asdict(run), "fills": store.fill_count(run_id)}
    if bars:
        payload["decisions"] = store.decisions(run_id)
    click.echo(json.dumps(payload, indent=2))
