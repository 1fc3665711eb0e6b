"""`sigmax backtest` and `sigmax lookahead` as a user runs them: stored runs, reports, the
research switch, and clear refusals of bad input."""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner, Result
from conftest import shared_csv

from api.cli import cli
from core.hashing import sha256_hex
from core.market_features import MIN_BARS
from storage.backtests import BacktestStore
from storage.engine import open_database

FILE = "XRP_USDT-5m.csv"


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"SIGMAX_HOME": str(home)})


def _short_file(tmp_path: Path, rows: int = 600) -> Path:
    lines = shared_csv(FILE).read_text().splitlines()[: rows + 1]
    path = tmp_path / FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def test_backtest_stores_the_run_and_writes_its_report(tmp_path: Path) -> None:
    home, data = tmp_path / "home", _short_file(tmp_path)
    result = run(home, "backtest", "--data", str(data), "--json", "--profile")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["bars"] == 541
    assert payload["bars_per_second"] > 0
    assert payload["triggers_enabled"] is True
    assert payload["rl_model"] is None
    assert payload["data_sha256"] == sha256_hex(data.read_bytes())
    metrics = payload["metrics"]
    for name in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar",
                 "win_rate", "profit_factor", "expectancy", "exposure", "trade_count",
                 "fees_paid", "buy_and_hold_return", "exits"):  # fmt: skip
        assert name in metrics
    profile = payload["profile_us_per_bar"]
    assert set(profile) >= {"plan", "rulings", "step gather", "step gate", "around"}
    assert payload["planned_bars"] > 0.5 * payload["bars"]  # most bars from the plan

    database = open_database(f"sqlite:///{(home / 'sigmax.db').resolve()}")
    store = BacktestStore(database)
    stored = store.get(payload["run_id"])
    assert stored is not None
    assert stored.bars == 541
    assert stored.metrics == metrics
    assert stored.data_sha256 == payload["data_sha256"]
    bars = store.decisions(payload["run_id"])
    assert len(bars) == 541
    # Each executed sell names the signal that sold; no other bar names one.
    sells = [bar for bar in bars if bar["action"] == "sell"]
    assert sells
    assert all(bar["exit_signal"] in {"debate", "rl", "sentiment"} for bar in sells)
    assert all(bar["exit_signal"] is None for bar in bars if bar["action"] != "sell")
    assert any(bar["trips"] for bar in bars)  # the triggers applied, and were recorded
    assert store.fill_count(payload["run_id"]) > 0
    database.dispose()

    listed = run(home, "backtests", "list")
    assert payload["run_id"] in listed.output
    assert "541 bars" in listed.output
    shown = json.loads(run(home, "backtests", "show", payload["run_id"], "--bars").stdout)
    assert shown["metrics"] == metrics
    assert shown["data_sha256"] == payload["data_sha256"]
    assert shown["decisions"] == bars
    missing = run(home, "backtests", "show", "no-such-run")
    assert missing.exit_code != 0
    assert "no backtest run with id 'no-such-run'" in missing.output

    report = Path(payload["report"])
    text = report.read_text()
    assert f"sha256 `{payload['data_sha256']}`" in text
    assert "## Metrics" in text
    assert "## Trades by exit reason" in text
    assert "## Safety" in text
    for suffix in ("equity", "drawdown", "trades"):
        image = report.parent / f"XRP_USDT-5m-{suffix}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.name in text


def test_the_research_switch_turns_the_triggers_off_and_says_so(tmp_path: Path) -> None:
    home, data = tmp_path / "home", _short_file(tmp_path)
    result = run(home, "backtest", "--data", str(data), "--json", "--no-triggers")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["triggers_enabled"] is False
    database = open_database(f"sqlite:///{(home / 'sigmax.db').resolve()}")
    bars = BacktestStore(database).decisions(payload["run_id"])
    database.dispose()
    assert not any(bar["trips"] for bar in bars)
    assert not any("circuit_breaker" in bar["failed_checks"] for bar in bars)
    assert "switched off" in Path(payload["report"]).read_text()


def test_bad_input_is_refused_with_what_to_fix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    unnamed = tmp_path / "candles.csv"
    shutil.copy(_short_file(tmp_path), unnamed)
    result = run(home, "backtest", "--data", str(unnamed))
    assert result.exit_code != 0
    assert "give --symbol and --timeframe" in result.output
    result = run(home, "backtest", "--data", str(unnamed), "--symbol", "XRP/DOGE",
                 "--timeframe", "5m")  # fmt: skip
    assert result.exit_code != 0
    assert "no paper balance in DOGE: pass --balance" in result.output
    result = run(home, "backtest", "--data", str(unnamed), "--symbol", "XRP/USDT",
                 "--timeframe", "5m", "--from", "2030-01-01")  # fmt: skip
    assert result.exit_code != 0
    assert "no bar of XRP/USDT 5m to decide" in result.output
    assert f"the indicators need {MIN_BARS} candles" in result.output
    result = run(home, "backtest", "--data", str(unnamed), "--symbol", "XRP/USDT",
                 "--timeframe", "5m", "--fee", "0.5")  # fmt: skip
    assert result.exit_code != 0
    assert "--fee" in result.output


def test_a_timeframe_or_symbol_the_file_contradicts_is_refused(tmp_path: Path) -> None:
    home, data = tmp_path / "home", _short_file(tmp_path)
    finer = run(home, "backtest", "--data", str(data), "--timeframe", "1m")
    assert finer.exit_code != 0
    assert "its candles are 5m apart, not 1m as --timeframe says: pass --timeframe 5m" in (
        finer.output
    )
    coarser = run(home, "backtest", "--data", str(data), "--timeframe", "15m")
    assert coarser.exit_code != 0
    assert "its candles are 5m apart, not 15m as --timeframe says" in coarser.output
    misnamed = tmp_path / "XRP_USDT-1m.csv"
    shutil.copy(data, misnamed)
    named = run(home, "lookahead", "--data", str(misnamed))
    assert named.exit_code != 0
    assert "not 1m as the file name says: rename it …-5m.csv" in named.output
    symbol = run(home, "backtest", "--data", str(data), "--symbol", "BTC/USDT")
    assert symbol.exit_code != 0
    assert "--symbol BTC/USDT contradicts the file name XRP_USDT-5m.csv" in symbol.output
    assert "leave --symbol out" in symbol.output
    assert "no backtest runs stored" in run(home, "backtests", "list").output


def test_a_report_that_cannot_be_written_stores_no_run(tmp_path: Path) -> None:
    home, data = tmp_path / "home", _short_file(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run(home, "backtest", "--data", str(data), "--report", str(blocker / "report"))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a refusal, not a traceback
    assert f"cannot write the report to {blocker / 'report'}" in result.output
    assert "no backtest runs stored" in run(home, "backtests", "list").output


def test_lookahead_reports_no_change_for_our_pipeline(tmp_path: Path) -> None:
    home, data = tmp_path / "home", _short_file(tmp_path, rows=300)
    result = run(home, "lookahead", "--data", str(data), "--samples", "20", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["sampled"] == 20
    assert payload["changed"] == []
    assert payload["changes_by_node"]["gather"] == 0
