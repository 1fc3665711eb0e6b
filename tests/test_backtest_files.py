"""A backtest of each real candle file completes, with figures a report can show."""

import math
from pathlib import Path

import pytest
from conftest import shared_csv

from backtest.report import write_report
from backtest.run import run_backtest
from backtest.summary import metrics_of
from core.hashing import sha256_hex
from core.market_features import MIN_BARS
from core.settings import Settings
from ingestion.candle_file import parse_candle_file
from rl.registry import MODELS_FOLDER, ModelRegistry

FILES = ("BTC_USDT-5m", "ETH_BTC-5m", "LTC_BTC-5m", "XRP_ETH-1m", "XRP_USDT-5m")


def _backtest(tmp_path: Path, name: str, rows: int | None) -> None:
    pair, timeframe = name.split("-")
    data = shared_csv(f"{name}.csv").read_bytes()
    series = parse_candle_file(data, pair.replace("_", "/"), timeframe, "import").candles
    if rows is not None:
        series = series.part(0, rows)
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    result = run_backtest(series, settings, rl_model)
    assert len(result.bars) == len(series) - (MIN_BARS - 1)
    metrics = metrics_of(result)
    assert math.isfinite(metrics.total_return)
    assert math.isfinite(metrics.buy_and_hold_return)
    report = write_report(
        result, metrics, tmp_path / "report", "sigmax backtest …", sha256_hex(data)
    )
    assert report.name == f"{name}.md"


@pytest.mark.parametrize("name", FILES)
def test_a_backtest_of_the_first_bars_of_each_file_completes(tmp_path: Path, name: str) -> None:
    _backtest(tmp_path, name, 700)


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_a_backtest_of_each_whole_file_completes(tmp_path: Path, name: str) -> None:
    _backtest(tmp_path, name, None)
