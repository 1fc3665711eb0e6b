"""The command line as a user meets it: the demo, imports, decisions, and clear refusals."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from conftest import shared_csv

from api.cli import cli
from storage.engine import open_database
from storage.models import CandleImportRow, CandleRow

SIGMAX = Path(sys.executable).parent / "sigmax"


def run(home: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"SIGMAX_HOME": str(home), **env})


def candle_count(home: Path) -> int:
    database = open_database(f"sqlite:///{(home / 'sigmax.db').resolve()}")
    with database.session_factory() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(CandleRow)) or 0
        count += session.scalar(sa.select(sa.func.count()).select_from(CandleImportRow)) or 0
    database.dispose()
    return count


def test_the_demo_decides_two_symbols_offline(tmp_path: Path) -> None:
    """README command 1's last step, as a separate process on an empty home."""
    if not SIGMAX.exists():
        pytest.fail(f"{SIGMAX} missing: install the package (pip install -e '.[test]')")
    result = subprocess.run(
        [str(SIGMAX), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert f"simulated 400 new 5m candles for {symbol} [sim]" in result.stdout
        assert f"{symbol} 5m as of" in result.stdout
    assert result.stdout.count("[sim]  id ") == 2
    assert (tmp_path / "var" / "sigmax.db").exists()
    listed = subprocess.run(
        [str(SIGMAX), "decisions", "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert len(listed.stdout.strip().splitlines()) == 2


def test_import_decide_list_and_show(tmp_path: Path) -> None:
    imported = run(
        tmp_path, "data", "import", str(shared_csv("XRP_ETH-1m.csv")),
        "--symbol", "XRP/ETH", "--timeframe", "1m",
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    assert "2469 rows, 2469 added" in imported.output
    assert "kept as gaps" in imported.output
    decided = run(
        tmp_path, "decide", "XRP/ETH", "--timeframe", "1m", "--as-of", "2019-10-12T12:00:00Z"
    )
    assert decided.exit_code == 0, decided.output
    assert "gate checks:" in decided.output
    listed = run(tmp_path, "decisions", "list", "--symbol", "XRP/ETH")
    decision_id = listed.output.split()[0]
    shown = run(tmp_path, "decisions", "show", decision_id, "--json")
    assert json.loads(shown.output)["id"] == decision_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decide", "btc-usdt"], "must look like BTC/USDT"),
        (["decide", "BTC/USDT", "--timeframe", "7m"], "unknown timeframe '7m'"),
        (["decide", "BTC/USDT", "--as-of", "yesterday"], "neither ISO-8601"),
        (["decide", "BTC/USDT", "--as-of", "1674216000"], "looks like seconds"),
        (
            ["data", "import", "missing.csv", "--symbol", "BTC/USDT", "--timeframe", "5m"],
            "does not exist",
        ),
    ],
)
def test_bad_arguments_are_refused_with_what_to_fix(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(tmp_path, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_deciding_a_symbol_without_candles_says_how_to_get_them(tmp_path: Path) -> None:
    result = run(tmp_path, "decide", "SOL/USDT")
    assert result.exit_code == 1
    assert "no 5m candles stored for SOL/USDT" in result.output
    assert "sigmax data import" in result.output


def test_a_bad_setting_names_its_variable(tmp_path: Path) -> None:
    result = run(tmp_path, "decisions", "list", SIGMAX_RISK_PROFILE="reckless")
    assert result.exit_code == 2
    assert "SIGMAX_RISK_PROFILE" in result.output


def test_a_rejected_file_names_row_and_column_and_changes_nothing(tmp_path: Path) -> None:
    source = shared_csv("BTC_USDT-5m.csv").read_text().splitlines()
    good = tmp_path / "good.csv"
    good.write_text("\n".join(source[:101]) + "\n")
    assert (
        run(
            tmp_path, "data", "import", str(good), "--symbol", "BTC/USDT", "--timeframe", "5m"
        ).exit_code
        == 0
    )
    before = candle_count(tmp_path)
    cells = source[150].split(",")
    cells[2] = str(float(cells[3]) - 1.0)  # high below low
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join([source[0], *source[100:150], ",".join(cells), *source[151:200]]) + "\n"
    )
    result = run(tmp_path, "data", "import", str(bad), "--symbol", "BTC/USDT", "--timeframe", "5m")
    assert result.exit_code == 1
    assert "row 51 (line 52), column high" in result.output
    assert "nothing was imported" in result.output
    assert candle_count(tmp_path) == before


def test_showing_an_unknown_decision_fails_clearly(tmp_path: Path) -> None:
    result = run(tmp_path, "decisions", "show", "no-such-id")
    assert result.exit_code == 1
    assert "no decision with id 'no-such-id'" in result.output


def test_pause_panic_status_and_resume(tmp_path: Path) -> None:
    imported = run(
        tmp_path, "data", "import", str(shared_csv("BTC_USDT-5m.csv")),
        "--symbol", "BTC/USDT", "--timeframe", "5m",
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    status = run(tmp_path, "status")
    assert "state: ACTIVE since never changed" in status.output
    assert "open positions: 0" in status.output

    paused = run(tmp_path, "pause", "--reason", "news pending", "--actor", "alice")
    assert paused.exit_code == 0, paused.output
    assert "(news pending; by alice)" in run(tmp_path, "status").output

    halted = run(tmp_path, "panic", "--reason", "drill", "--actor", "alice")
    assert halted.exit_code == 0, halted.output
    assert halted.output.startswith("HALTED")
    assert "halt" in halted.output
    assert "cancel_orders" in halted.output
    again = run(tmp_path, "panic", "--reason", "drill again")
    assert again.output.startswith("already HALTED")

    decided = run(tmp_path, "decide", "BTC/USDT", "--as-of", "2023-01-20T12:00:00Z", "--json")
    record = json.loads(decided.output)
    assert record["safety"]["control_state"] == "HALTED"
    assert record["execution"]["orders"] == []

    assert run(tmp_path, "resume").exit_code == 2  # a resume must say why
    resumed = run(tmp_path, "resume", "--reason", "drill over", "--actor", "alice")
    assert resumed.exit_code == 0, resumed.output
    assert "ACTIVE" in resumed.output
    assert "state: ACTIVE" in run(tmp_path, "status").output
