"""The `sigmax` command line: demo, serve, keys, data import, decide, decisions, control."""

import asyncio
import getpass
import json
from dataclasses import dataclass
from pathlib import Path

import ccxt
import click
from pydantic import ValidationError

from api.render import render_decision
from api.server import ServeError, ensure_api_key, serve
from api.service import build_service
from api.workers import build_workers, http_client, news_poller, research_poller, run_workers
from core.decision import Decision
from core.settings import Settings, validate_symbol
from core.timeframes import floor_to, format_timestamp, now_ms, parse_timestamp, timeframe_ms
from execution.broker import BookKeepingBroker
from execution.exchange import ExchangeBroker
from execution.exchange_client import ExchangeConfigError
from execution.factory import build_broker
from graph.engine import DecisionEngine
from ingestion.candle_file import CandleFileError
from ingestion.exchange_candles import (
    CandleFetcher,
    RefreshReport,
    candle_client,
    public_client,
)
from ingestion.exchange_feed import ExchangeFeed
from ingestion.feeds import (
    CandleFeed,
    FeedError,
    ReplayFeed,
    Series,
    SimulatedFeed,
    ensure_not_simulated,
)
from ingestion.importer import import_candle_file
from ingestion.sim_feed import RealDataPresentError, extend_simulation
from ingestion.symbols import check_listed
from safety.control import ControlError, ControlService
from storage.api_errors import ApiErrorStore
from storage.api_keys import SCOPES, ApiKeyError, ApiKeyStore
from storage.candles import CandleConflictError, CandleStore
from storage.decisions import DecisionFilters, DecisionStore
from storage.engine import Database, open_database

DEMO_BARS = 400
FETCH_TIMEOUT_SECONDS = 10.0


@dataclass
class Context:
    """Settings are built once in `main`; the database is opened on first use."""

    settings: Settings
    _database: Database | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = open_database(self.settings.resolved_database_url)
        return self._database


pass_context = click.make_pass_decorator(Context)


def _symbol(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return validate_symbol(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _timeframe(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        timeframe_ms(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return value


def _timestamp(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.group()
@click.version_option(package_name="sigmax")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """SIGMAX: agents debate, a strict risk gate decides. Settings come from SIGMAX_* variables."""
    if ctx.obj is None:
        ctx.obj = Context(settings=_load_settings())


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"SIGMAX_{'__'.join(str(part) for part in issue['loc']).upper()}: {issue['msg']}"
            for issue in error.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from None


@cli.command()
@click.option("--bars", default=DEMO_BARS, show_default=True, help="Simulated history per symbol.")
@pass_context
def demo(context: Context, bars: int) -> None:
    """Simulate a market for the configured symbols (offline) and decide each one now."""
    settings = context.settings
    timeframe = settings.timeframes[0]
    as_of = floor_to(now_ms(), timeframe_ms(timeframe))
    store = CandleStore(context.database.session_factory)
    engine = DecisionEngine(settings, context.database)
    click.echo(f"database: {settings.resolved_database_url}")
    for symbol in settings.symbols:
        try:
            extended = extend_simulation(store, symbol, timeframe, as_of, bars, settings.seed)
        except RealDataPresentError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"simulated {extended.added} new {timeframe} candles for {symbol} [sim]")
        click.echo(render_decision(engine.decide(symbol, timeframe, as_of)))
        click.echo()


@cli.command("serve")
@click.option("--host", help="Address to listen on (default SIGMAX_API__HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Default SIGMAX_API__PORT, 8000.")
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay this candle file (imported first) instead of the simulated market.",
)
@click.option("--symbol", callback=lambda c, p, v: v and _symbol(c, p, v), help="With --replay.")
@click.option(
    "--timeframe", callback=lambda c, p, v: v and _timeframe(c, p, v), help="With --replay."
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001, max=100_000),
    help="Market seconds per wall second (default SIGMAX_SERVICE__SIM_SPEED or "
    "SIGMAX_SERVICE__REPLAY_SPEED).",
)
@click.option("--no-scheduler", is_flag=True, help="Serve the API only; decide on request.")
@click.option(
    "--exchange",
    "exchange_id",
    help="Decide on closed candles from this exchange (a ccxt id, e.g. binance), in real time.",
)
@click.option("--rest-url", help="With --exchange: send its REST requests here (proxy, mirror).")
@click.option("--testnet", is_flag=True, help="With --exchange: its testnet (ccxt's sandbox mode).")
@pass_context
def serve_command(
    context: Context,
    host: str | None,
    port: int | None,
    replay: Path | None,
    symbol: str | None,
    timeframe: str | None,
    speed: float | None,
    no_scheduler: bool,
    exchange_id: str | None,
    rest_url: str | None,
    testnet: bool,
) -> None:
    """Run the REST service: decide at each candle close of each configured symbol (the
    simulated market by default, offline), and serve /api/v1 (docs at /docs)."""
    settings = context.settings
    host = host or settings.api.host
    port = settings.api.port if port is None else port
    database = context.database
    try:
        ensure_api_key(ApiKeyStore(database), host, _say)
        if exchange_id is not None:
            if replay is not None or speed is not None:
                raise click.UsageError("--exchange runs in real time: no --replay or --speed")
            feed: CandleFeed = exchange_feed(context, exchange_id, rest_url, testnet)
            # Their own client: the scheduler's refreshes and the workers run side by side.
            client = public_client(exchange_id, FETCH_TIMEOUT_SECONDS, rest_url, testnet)
            workers = build_workers(settings, database, client, candles=None)
        else:
            if testnet:
                raise click.UsageError("--testnet goes with --exchange")
            feed, workers = _feed(context, replay, symbol, timeframe), None
    except (ServeError, FeedError) as error:
        raise click.ClickException(str(error)) from None
    try:
        service = build_service(
            settings, database, feed, run_scheduler=not no_scheduler, speed=speed, workers=workers
        )
    except ExchangeConfigError as error:
        raise click.ClickException(str(error)) from None
    except ccxt.BaseError as error:  # the start-up reconciliation could not ask the exchange
        raise click.ClickException(f"exchange broker not reconciled: {error}") from None
    click.echo(
        f"database: {settings.resolved_database_url}\n"
        f"market: {feed.mode} at {service.clock.speed:g}x, "
        f"{', '.join(f'{item.symbol} {item.timeframe}' for item in feed.series)}\n"
        f"API: http://{host}:{port}/api/v1  docs: http://{host}:{port}/docs"
    )
    serve(service, host, port)


@cli.command("ingest")
@click.option("--exchange", "exchange_id", default="binance", show_default=True, help="A ccxt id.")
@click.option("--rest-url", help="Send the exchange's REST requests here (a proxy or mirror).")
@click.option("--testnet", is_flag=True, help="The exchange's testnet (ccxt's sandbox mode).")
@pass_context
def ingest_command(context: Context, exchange_id: str, rest_url: str | None, testnet: bool) -> None:
    """Run the ingestion workers alone, without deciding: candles of the configured series at
    each close, order books and tickers, news and research. Stop with Ctrl-C (SIGINT/SIGTERM)."""
    settings = context.settings
    try:
        feed = exchange_feed(context, exchange_id, rest_url, testnet)
        client = public_client(exchange_id, FETCH_TIMEOUT_SECONDS, rest_url, testnet)
    except FeedError as error:
        raise click.ClickException(str(error)) from None
    workers = build_workers(settings, context.database, client, candles=feed)
    click.echo(
        f"ingesting from {exchange_id}: "
        f"{', '.join(f'{item.symbol} {item.timeframe}' for item in feed.series)}; "
        f"workers: {', '.join(worker.name for worker in workers.workers)}"
    )
    try:
        run_workers(workers, _say)
    finally:
        feed.close()


def _say(text: str) -> None:
    click.echo(text)


def configured_series(settings: Settings) -> tuple[Series, ...]:
    return tuple(
        Series(symbol, timeframe)
        for symbol in settings.symbols
        for timeframe in settings.timeframes
    )


def exchange_feed(
    context: Context, exchange_id: str, rest_url: str | None, testnet: bool
) -> ExchangeFeed:
    """The configured series from ``exchange_id``, each symbol checked against its markets."""
    settings = context.settings
    check_listed(
        public_client(exchange_id, FETCH_TIMEOUT_SECONDS, rest_url, testnet), settings.symbols
    )
    store = CandleStore(context.database.session_factory)
    # The refresh reads what is stored, then writes: on SQLite it takes the write lock at
    # BEGIN, so it waits for the workers' writes (busy timeout) instead of failing "locked".
    writer = CandleStore(context.database.guarded_session_factory)
    # Enough history for the first decision's indicators and the gate's missing-bar count.
    fetcher = CandleFetcher(
        candle_client(exchange_id, FETCH_TIMEOUT_SECONDS, rest_url, testnet),
        writer,
        ApiErrorStore(context.database.session_factory),
        backfill_bars=settings.lookback_bars,
    )
    return ExchangeFeed(exchange_id, store, fetcher, configured_series(settings))


def _feed(
    context: Context, replay: Path | None, symbol: str | None, timeframe: str | None
) -> CandleFeed:
    settings = context.settings
    store = CandleStore(context.database.session_factory)
    if replay is None:
        if symbol or timeframe:
            raise click.UsageError("--symbol and --timeframe go with --replay")
        return SimulatedFeed(
            store, configured_series(settings), settings.lookback_bars, settings.seed
        )
    if symbol is None or timeframe is None:
        raise click.UsageError("--replay needs --symbol and --timeframe (e.g. BTC/USDT 5m)")
    replayed = Series(symbol, timeframe)
    ensure_not_simulated(store, replayed)
    try:
        report = import_candle_file(store, replay, symbol, timeframe)
    except (CandleFileError, CandleConflictError) as error:
        raise click.ClickException(f"{replay}: {error}; nothing was imported") from None
    click.echo(f"{replay}: {report.rows_added} candles added, {report.rows_already_present} known")
    return ReplayFeed(
        replayed, report.first_open_time, report.last_open_time, settings.lookback_bars
    )


@cli.group()
def keys() -> None:
    """API keys of the REST service (scopes: read, trade, admin)."""


@keys.command("create")
@click.option("--scope", required=True, type=click.Choice(SCOPES))
@click.option("--label", default=None, help="What the key is for (recorded as the actor).")
@pass_context
def create_key(context: Context, scope: str, label: str | None) -> None:
    """Make a key and print it: this once only (only its hash is stored)."""
    store = ApiKeyStore(context.database)
    try:
        made = store.create(scope, label or f"{scope} key", now_ms())  # type: ignore[arg-type]
    except ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"created {made.key.scope} key {made.key.id} ({made.key.label}); shown once:")
    click.echo(made.token)


@keys.command("list")
@pass_context
def list_keys(context: Context) -> None:
    """Every key: id, scope, label, created, revoked (never the secret)."""
    rows = ApiKeyStore(context.database).list()
    if not rows:
        click.echo("no API keys (`sigmax keys create --scope admin`)")
    for key in rows:
        revoked = f"revoked {format_timestamp(key.revoked_at)}" if key.revoked_at else "active"
        click.echo(
            f"{key.id}  {key.scope:<5}  {revoked:<32} created {format_timestamp(key.created_at)}"
            f"  {key.label}"
        )


@keys.command("revoke")
@click.argument("key_id")
@pass_context
def revoke_key(context: Context, key_id: str) -> None:
    """Revoke a key: refused from the next request on."""
    try:
        key = ApiKeyStore(context.database).revoke(key_id, now_ms())
    except ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"revoked {key.scope} key {key.id} ({key.label})")


@cli.group()
def news() -> None:
    """News feeds (RSS/Atom) behind the sentiment signal."""


@news.command("poll")
@pass_context
def poll_news(context: Context) -> None:
    """Poll each feed of SIGMAX_NEWS__FEEDS once; store the new items, scored and tagged."""
    settings = context.settings
    with http_client(settings.news.timeout_seconds, "news poller") as client:
        results = news_poller(settings, context.database, client).poll(now_ms())
    _report(
        [(result.url, result.outcome, result.detail) for result in results],
        "no feed could be read (see above); nothing was stored",
    )


@cli.group()
def research() -> None:
    """Research sources: Fear & Greed, CoinGecko, Reddit, CryptoPanic (with a token)."""


@research.command("poll")
@pass_context
def poll_research(context: Context) -> None:
    """Ask each research source once (within its rate limit) and store what it answers."""
    settings = context.settings
    with http_client(settings.research.timeout_seconds, "research poller") as client:
        results = research_poller(settings, context.database, client).poll(now_ms())
    _report(
        [(result.source, result.outcome, result.detail) for result in results],
        "no research source answered (see above)",
    )


def _report(outcomes: list[tuple[str, str, str]], all_failed: str) -> None:
    """One line per source; a failure of the command only when every source failed."""
    for name, outcome, detail in outcomes:
        click.echo(f"{name}: {outcome} — {detail}")
    if all(outcome == "failed" for _, outcome, _ in outcomes):
        raise click.ClickException(all_failed)


@cli.group()
def data() -> None:
    """Market data: import candle files, fetch candles from an exchange."""


@data.command("fetch")
@click.argument("symbol", callback=_symbol)
@click.option("--timeframe", default="5m", show_default=True, callback=_timeframe)
@click.option("--exchange", "exchange_id", default="binance", show_default=True, help="A ccxt id.")
@click.option(
    "--bars",
    default=500,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="How far back to start when nothing is stored yet.",
)
@click.option("--rest-url", help="Send the exchange's REST requests here (a proxy or mirror).")
@click.option("--testnet", is_flag=True, help="The exchange's testnet (ccxt's sandbox mode).")
@pass_context
def fetch_command(
    context: Context,
    symbol: str,
    timeframe: str,
    exchange_id: str,
    bars: int,
    rest_url: str | None,
    testnet: bool,
) -> None:
    """Fetch SYMBOL's closed candles from an exchange (ccxt, public data): after the newest
    stored, or the last --bars. Needs the network."""
    store = CandleStore(context.database.session_factory)

    async def fetch() -> RefreshReport:
        fetcher = CandleFetcher(
            candle_client(exchange_id, FETCH_TIMEOUT_SECONDS, rest_url, testnet),
            store,
            ApiErrorStore(context.database.session_factory),
            backfill_bars=bars,
        )
        try:
            return await fetcher.refresh(symbol, timeframe, now_ms())
        finally:
            await fetcher.close()

    try:
        ensure_not_simulated(store, Series(symbol, timeframe))
        report = asyncio.run(fetch())
    except FeedError as error:
        raise click.ClickException(f"{error}; nothing more was stored") from None
    click.echo(
        f"{symbol} {timeframe} from {exchange_id}: {report.received} received, "
        f"{report.added} added, {report.already_present} already present, "
        f"{report.retries} retries"
    )
    for reason in report.dropped:
        click.echo(f"  not kept: {reason}")


@data.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", required=True, callback=_symbol, help="e.g. BTC/USDT")
@click.option("--timeframe", required=True, callback=_timeframe, help="e.g. 5m")
@pass_context
def import_command(context: Context, file: Path, symbol: str, timeframe: str) -> None:
    """Import a CSV (timestamp,open,high,low,close,volume) or feather file of closed candles."""
    store = CandleStore(context.database.session_factory)
    try:
        report = import_candle_file(store, file, symbol, timeframe)
    except (CandleFileError, CandleConflictError) as error:
        raise click.ClickException(f"{file}: {error}; nothing was imported") from None
    click.echo(
        f"{file}: {report.rows_in_file} rows, {report.rows_added} added, "
        f"{report.rows_already_present} already present, "
        f"{format_timestamp(report.first_open_time)} → {format_timestamp(report.last_open_time)}"
    )
    missing = sum(gap.missing for gap in report.gaps)
    click.echo(f"gaps: {len(report.gaps)} ({missing} missing candles), kept as gaps")
    for gap in report.gaps[:10]:
        click.echo(f"  after {format_timestamp(gap.after_open_time)}: {gap.missing} missing")
    if len(report.gaps) > 10:
        click.echo(f"  … and {len(report.gaps) - 10} more")


@cli.command()
@click.argument("symbol", callback=_symbol)
@click.option("--timeframe", default="5m", show_default=True, callback=_timeframe)
@click.option("--as-of", "as_of", callback=_timestamp, help="ISO-8601 UTC or epoch ms; default now")
@click.option("--json", "as_json", is_flag=True, help="Print the full decision record as JSON.")
@click.option("--no-orders", is_flag=True, help="Decide only: send no order to the paper broker.")
@pass_context
def decide(
    context: Context,
    symbol: str,
    timeframe: str,
    as_of: int | None,
    as_json: bool,
    no_orders: bool,
) -> None:
    """Decide buy, sell or hold for SYMBOL from the candles closed by --as-of, store it, and
    send what the gate approves to the paper broker (it fills at the next candle's open)."""
    store = CandleStore(context.database.session_factory)
    if store.coverage(symbol, timeframe) is None:
        raise click.ClickException(
            f"no {timeframe} candles stored for {symbol}: import some with "
            f"`sigmax data import FILE --symbol {symbol} --timeframe {timeframe}`"
        )
    engine = DecisionEngine(context.settings, context.database, _broker(context))
    moment = as_of if as_of is not None else now_ms()
    decision = engine.decide(symbol, timeframe, moment, place_orders=not no_orders)
    _print(decision, as_json)


@cli.group()
def decisions() -> None:
    """Read stored decisions back."""


@decisions.command("list")
@click.option("--symbol", callback=lambda c, p, v: v and _symbol(c, p, v), default=None)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@pass_context
def list_decisions(context: Context, symbol: str | None, limit: int) -> None:
    """The newest decisions first."""
    rows = DecisionStore(context.database).list(DecisionFilters(symbol=symbol), limit=limit)
    if not rows:
        click.echo("no decisions stored")
    for row in rows:
        click.echo(
            f"{row.id}  {format_timestamp(row.as_of)}  {row.symbol:<10} {row.timeframe:<4} "
            f"{row.action:<4} size {row.size:.4f} conf {row.confidence:.3f} "
            f"{row.verdict:<8} {row.mode}"
        )


@decisions.command("show")
@click.argument("decision_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full record as JSON.")
@pass_context
def show_decision(context: Context, decision_id: str, as_json: bool) -> None:
    """One decision, in full."""
    decision = DecisionStore(context.database).get(decision_id)
    if decision is None:
        raise click.ClickException(f"no decision with id {decision_id!r}")
    _print(decision, as_json)


def _actor(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    """Who acts: given, or the operating-system user running the command."""
    return value or f"cli:{getpass.getuser()}"


def _broker(context: Context) -> BookKeepingBroker:
    """The configured broker; a clear message when the exchange broker cannot be built."""
    try:
        return build_broker(context.settings, context.database)
    except ExchangeConfigError as error:
        raise click.ClickException(str(error)) from None


def _control(context: Context) -> ControlService:
    return ControlService(context.database, _broker(context), context.settings)


actor_option = click.option(
    "--actor", callback=_actor, help="Who acts (recorded); default: cli:<your user name>."
)
symbol_scope_option = click.option(
    "--symbol",
    callback=lambda c, p, v: v and _symbol(c, p, v),
    default=None,
    help="Only this symbol (default: everything).",
)


@cli.command()
@click.option("--reason", required=True, help="Why: recorded with the HALTED state.")
@click.option("--close-positions", is_flag=True, help="Also close every position reduce-only.")
@actor_option
@pass_context
def panic(context: Context, reason: str, close_positions: bool, actor: str) -> None:
    """HALT everything now: persist HALTED, cancel open orders, optionally close positions."""
    report = _control(context).panic(actor, reason, now_ms(), close_positions=close_positions)
    halted = next(step.ok for step in report.steps if step.name == "halt")
    if not halted:
        click.echo("HALT FAILED: trading is NOT stopped")
    else:
        click.echo("already HALTED" if report.already_halted else "HALTED")
    for step in report.steps:
        mark = "ok  " if step.ok else "FAIL"
        error = f" — {step.error}" if step.error else ""
        click.echo(f"  {mark} {step.name} after {step.elapsed_ms:.1f} ms: {step.detail}{error}")
    if not halted:
        raise click.ClickException(
            "HALTED could not be persisted: trading is NOT stopped; fix the database and "
            "run `sigmax panic` again"
        )
    click.echo("nothing new goes out until `sigmax resume --reason ...`")
    if not report.ok:
        raise click.ClickException("some panic steps failed (see above); HALTED holds")


@cli.command()
@click.option("--reason", required=True, help="Why: recorded with the PAUSED state.")
@symbol_scope_option
@actor_option
@pass_context
def pause(context: Context, reason: str, symbol: str | None, actor: str) -> None:
    """PAUSE: no new entries, exits still allowed, until a resume."""
    try:
        state = _control(context).pause(actor, reason, now_ms(), symbol=symbol)
    except ControlError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{_scope_name(symbol)} PAUSED since {format_timestamp(state.since or 0)}")


@cli.command()
@click.option("--reason", required=True, help="Why trading may go on: recorded.")
@click.option("--force", is_flag=True, help="Resume even during an auto-pause's cool-down.")
@symbol_scope_option
@actor_option
@pass_context
def resume(context: Context, reason: str, force: bool, symbol: str | None, actor: str) -> None:
    """Lift a PAUSE or a HALT (a person's decision: actor and reason are recorded)."""
    try:
        state = _control(context).resume(actor, reason, now_ms(), force=force, symbol=symbol)
    except (ControlError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{_scope_name(symbol)} {state.state} ({state.reason})")


@cli.command()
@pass_context
def status(context: Context) -> None:
    """Control state, since when and why, held-back symbols, open positions, today's PnL;
    with the exchange broker, the exchange's own open orders and balances too."""
    broker = _broker(context)
    try:
        report = ControlService(context.database, broker, context.settings).status(now_ms())
    except ccxt.BaseError as error:
        raise click.ClickException(f"{broker.name} did not answer: {error}") from None
    control = report.control
    since = format_timestamp(control.since) if control.since is not None else "never changed"
    click.echo(f"state: {control.state} since {since} ({control.reason}; by {control.actor})")
    for held_back in report.symbols_not_active:
        click.echo(f"  {held_back.symbol}: {held_back.state} ({held_back.reason})")
    click.echo(f"open orders: {report.open_orders}")
    click.echo(f"open positions: {len(report.holdings)}")
    for holding in report.holdings:
        click.echo(
            f"  {holding.symbol}: {holding.quantity:.8g} at mark {holding.mark_price:.8g}, "
            f"value {holding.value:.2f}, unrealised {holding.unrealised_pnl:+.2f}"
        )
    pnl = ", ".join(f"{quote} {value:+.2f}" for quote, value in sorted(report.today_pnl.items()))
    click.echo(f"today's PnL: {pnl or 'none'}")
    if isinstance(broker, ExchangeBroker):
        _echo_exchange(broker)


def _echo_exchange(broker: ExchangeBroker) -> None:
    snapshot = broker.snapshot()
    click.echo(f"{broker.name} open orders: {len(snapshot.open_orders)}")
    for order in snapshot.open_orders:
        click.echo(
            f"  {order.exchange_order_id} {order.symbol} {order.side} {order.filled:.8g} of "
            f"{order.amount:.8g} at {order.price} ({order.status}, client id "
            f"{order.client_order_id})"
        )
    click.echo(f"{broker.name} balances:")
    for currency, (free, locked) in sorted(snapshot.balances.items()):
        click.echo(f"  {currency}: {free:.10g} free, {locked:.10g} locked")


def _scope_name(symbol: str | None) -> str:
    return symbol or "trading"


def _print(decision: Decision, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(decision.model_dump(mode="json"), indent=2))
    else:
        click.echo(render_decision(decision))


# Last: cli_rl and cli_backtest import Context and the option callbacks from this module.
from api.cli_backtest import backtest_command, backtests_group, lookahead_command  # noqa: E402
from api.cli_rl import rl  # noqa: E402

cli.add_command(rl)
cli.add_command(backtest_command)
cli.add_command(lookahead_command)
cli.add_command(backtests_group)


def main() -> None:
    cli()
