"""`sigmax rl …`: train a PPO policy, list and activate models, run the walk-forward report.

Registered by api/cli.py at its end (it imports this module's Context from there): import
api.cli, not this module, first.
"""

import re
import shlex
import sys
from pathlib import Path

import click
import numpy as np

from api.cli import Context, _timestamp
from core.candles import CandleWindow
from core.settings import Settings
from core.timeframes import TIMEFRAME_MS, format_timestamp, timeframe_ms
from graph.debate_signal import debate_actions
from ingestion.candle_file import CandleFileError, parse_candle_file
from rl.env import costs_of
from rl.registry import MODELS_FOLDER, ModelRegistry, RegistryError
from rl.report import write_report
from rl.train import TrainingRequest, train_model
from rl.walk_forward import walk_forward

# BTC_USDT-5m.csv → BTC/USDT, 5m: the shared data's naming (freqtrade's).
_FILE_NAME = re.compile(
    r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<timeframe>\w+)\.(csv|feather)$"
)
_TIMEFRAME_OF_MS = {step: name for name, step in TIMEFRAME_MS.items()}
# Every timeframe is a whole number of the finest: a file of any of them parses at it.
FINEST_TIMEFRAME = min(TIMEFRAME_MS, key=TIMEFRAME_MS.__getitem__)


@click.group()
def rl() -> None:
    """The RL signal: train, list, activate, evaluate."""


def read_series(
    path: Path, symbol: str | None = None, timeframe: str | None = None, data: bytes | None = None
) -> CandleWindow:
    """A candle file, checked in full; its symbol and timeframe as given, or else from its
    name, BASE_QUOTE-TIMEFRAME.csv (or .feather). A symbol contradicting that name, or a
    timeframe other than the spacing of the file's candles, is refused with what to fix.
    ``data``: the file's bytes, when the caller has read them already (to hash them)."""
    match = _FILE_NAME.match(path.name)
    named: tuple[str, str] | None = (
        (f"{match['base']}/{match['quote']}", match["timeframe"]) if match else None
    )
    if named is None and (symbol is None or timeframe is None):
        raise click.BadParameter(
            f"{path.name}: name it BASE_QUOTE-TIMEFRAME.csv (e.g. BTC_USDT-5m.csv) so the "
            "symbol and timeframe are known, or give --symbol and --timeframe"
        )
    if named is not None and symbol is not None and symbol != named[0]:
        raise click.BadParameter(
            f"--symbol {symbol} contradicts the file name {path.name}, which says {named[0]}: "
            "leave --symbol out, or rename the file after the pair it holds"
        )
    series_symbol = symbol or (named[0] if named else "")
    series_timeframe = timeframe or (named[1] if named else "")
    content = path.read_bytes() if data is None else data
    try:
        timeframe_ms(series_timeframe)
    except ValueError as error:
        raise click.ClickException(f"{path}: {error}") from None
    try:
        parsed = parse_candle_file(content, series_symbol, series_timeframe, "import")
    except (CandleFileError, ValueError) as error:
        refusal = _finer_refusal(path, content, series_symbol, series_timeframe, timeframe)
        raise click.ClickException(refusal or f"{path}: {error}") from None
    refusal = _spacing_refusal(path, parsed.candles, series_timeframe, timeframe)
    if refusal:
        raise click.ClickException(refusal)
    return parsed.candles


def _finer_refusal(
    path: Path, content: bytes, symbol: str, timeframe: str, given: str | None
) -> str | None:
    """Candles finer than ``timeframe`` fail on its boundaries: read at the finest timeframe,
    their spacing says which to use (None when the file fails there too, for its own reason)."""
    try:
        finest = parse_candle_file(content, symbol, FINEST_TIMEFRAME, "import").candles
    except (CandleFileError, ValueError):
        return None
    return _spacing_refusal(path, finest, timeframe, given)


def _spacing_refusal(
    path: Path, candles: CandleWindow, timeframe: str, given: str | None
) -> str | None:
    """Why ``timeframe`` (``given`` as --timeframe, or else from the file name) does not fit
    ``candles``, or None when it does: the closest two candles of any file are one timeframe
    apart, gaps only widen the others."""
    if len(candles) < 2:
        return None
    spacing = int(np.diff(candles.open_time).min())
    if spacing == timeframe_ms(timeframe):
        return None
    fitting = _TIMEFRAME_OF_MS.get(spacing)
    told = "--timeframe" if given else "the file name"
    problem = (
        f"{path.name}: its candles are {fitting or f'{spacing / 60_000:g} minutes'} apart, "
        f"not {timeframe} as {told} says"
    )
    if fitting is None:
        return f"{problem}; no timeframe fits ({', '.join(TIMEFRAME_MS)}): resample the file"
    if given:
        return f"{problem}: pass --timeframe {fitting}"
    return f"{problem}: rename it …-{fitting}{path.suffix} after the candles it holds"


def registry_of(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings.home / MODELS_FOLDER)


@rl.command("train")
@click.option(
    "--data",
    "files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Candle file(s), BASE_QUOTE-TF.csv; repeat for more.",
)
@click.option(
    "--train-until",
    required=True,
    callback=_timestamp,
    help="Use only candles closed by this instant (ISO-8601 UTC).",
)
@click.option("--timesteps", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--seed", type=int, default=None, help="Default: SIGMAX_SEED.")
@click.option("--activate", is_flag=True, help="Make the new model the active one.")
@click.pass_obj  # the cli group's Context
def train_command(
    context: Context,
    files: tuple[Path, ...],
    train_until: int,
    timesteps: int,
    seed: int | None,
    activate: bool,
) -> None:
    """Train PPO on the candles before --train-until, validate on their newest part, register."""
    settings = context.settings
    request = TrainingRequest(
        windows=[read_series(path) for path in files],
        train_until=train_until,
        timesteps=timesteps,
        seed=settings.seed if seed is None else seed,
        settings=settings.rl,
        costs=costs_of(settings),
    )
    with click.progressbar(length=timesteps, label="PPO", file=sys.stderr) as bar:
        done = 0

        def advance(steps: int) -> None:
            nonlocal done
            bar.update(min(steps, timesteps) - done)
            done = min(steps, timesteps)

        try:
            trained = train_model(request, advance)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    registry = registry_of(settings)
    try:
        path = registry.add(trained.model_id, trained.files, trained.meta)
        if activate:
            registry.activate(trained.model_id)
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"model {trained.model_id} → {path}")
    for series, metrics in trained.meta["validation"].items():
        click.echo(
            f"  validation {series}: "
            + _figures(metrics["rl"])
            + f" (buy and hold {metrics['buy_and_hold']['total_return']:+.2%})"
        )
    if activate:
        click.echo(f"active: {trained.model_id}")


def _figures(metrics: dict[str, float]) -> str:
    return (
        f"return {metrics['total_return']:+.2%}, Sharpe {metrics['sharpe']:+.2f}, "
        f"max drawdown {metrics['max_drawdown']:.2%}, {int(metrics['trades'])} trades"
    )


@rl.command("list")
@click.pass_obj  # the cli group's Context
def list_command(context: Context) -> None:
    """Registered models, oldest training cut first; * marks the active one."""
    registry = registry_of(context.settings)
    active = registry.active_id()
    models, unreadable = registry.models()
    if not models and not unreadable:
        click.echo(f"no models in {registry.root}")
    for problem in unreadable:
        click.echo(f"! unreadable: {problem}")
    for meta in models:
        mark = "*" if meta["id"] == active else " "
        click.echo(
            f"{mark} {meta['id']}  {meta['timeframe']} {', '.join(meta['series'])}  "
            f"data to {format_timestamp(meta['data_end'])}  "
            f"{meta['timesteps']} steps, seed {meta['seed']}"
        )


@rl.command("activate")
@click.argument("model_id")
@click.pass_obj  # the cli group's Context
def activate_command(context: Context, model_id: str) -> None:
    """Make MODEL_ID the model the decision path asks (read when a process starts)."""
    try:
        registry_of(context.settings).activate(model_id)
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"active: {model_id} (processes already running keep the model they loaded)")


@rl.command("evaluate")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Default: SIGMAX_RL__DATA_DIR.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs/rl"),
    show_default=True,
)
@click.option("--seed", type=int, default=None, help="Default: SIGMAX_SEED.")
@click.pass_obj  # the cli group's Context
def evaluate_command(context: Context, data_dir: Path | None, out: Path, seed: int | None) -> None:
    """Walk-forward over every candle file in the data folder: train on window k, test on k+1."""
    settings = context.settings
    folder = data_dir or settings.rl.data_dir
    files = (
        sorted(path for path in folder.glob("*") if _FILE_NAME.match(path.name))
        if folder.is_dir()
        else []
    )
    if not files:
        raise click.ClickException(f"no candle files named BASE_QUOTE-TF.csv in {folder}")
    seed = settings.seed if seed is None else seed
    results = []
    for path in files:
        window = read_series(path)
        click.echo(f"{path.name}: debate per bar over {len(window)} bars", err=True)
        results += walk_forward(
            window,
            debate_actions(window, settings, 0),
            settings.rl,
            costs_of(settings),
            seed,
            lambda text: click.echo(text, err=True),
        )
    notes = [
        f"Settings: {settings.rl.walk_forward_windows} windows per file, "
        f"{settings.rl.walk_forward_timesteps} PPO steps per window, seed {seed}, costs "
        f"{costs_of(settings).fraction:.2%} per trade, risk profile {settings.risk_profile}.",
    ]
    command = (
        f"SIGMAX_RL__WALK_FORWARD_WINDOWS={settings.rl.walk_forward_windows} "
        f"SIGMAX_RL__WALK_FORWARD_TIMESTEPS={settings.rl.walk_forward_timesteps} "
        f"sigmax rl evaluate --data-dir {shlex.quote(str(folder))} "
        f"--out {shlex.quote(str(out))} --seed {seed}"
    )
    path = write_report(results, out, command, notes)
    click.echo(f"report: {path}")
