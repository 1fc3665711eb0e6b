"""The service's life: the first key, the loopback rule, the scheduler at each candle close,
a replay to its end, and SIGTERM with a stream open and decisions in flight."""

import csv
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from server_helpers import TOKEN, create_key, running_server

from api.cli import cli
from core.decision import Decision
from core.timeframes import format_timestamp, parse_timestamp
from ingestion.sim import simulate_candles
from storage.api_keys import VERIFIED_FOR_SECONDS
from storage.engine import open_database
from storage.models import DebateTurnRow, DecisionRecordRow, DecisionRow

STEP = 300_000


def wait_for(condition: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {condition}")


def stored_records(home: Path) -> list[tuple[Decision, int]]:
    """Every stored decision with the number of debate-turn rows stored for it."""
    database = open_database(f"sqlite:///{home / 'sigmax.db'}")
    turns = (
        sa.select(sa.func.count())
        .where(DebateTurnRow.decision_id == DecisionRow.id)
        .scalar_subquery()
    )
    with database.session_factory() as session:
        rows = session.execute(
            sa.select(DecisionRecordRow.record, turns)
            .join(DecisionRow, DecisionRow.id == DecisionRecordRow.decision_id)
            .order_by(DecisionRow.seq)
        )
        records = [(Decision.model_validate_json(record), count) for record, count in rows]
    database.dispose()
    return records


def test_first_start_creates_an_admin_key_and_prints_it_once(tmp_path: Path) -> None:
    with running_server(tmp_path, "--no-scheduler") as first:
        match = TOKEN.search(first.output)
        assert match, first.output
        with first.client(match.group(0)) as client:
            assert client.get("/version").status_code == 200
            assert client.post("/control/pause", json={"reason": "admin may"}).status_code == 200
        first.stop_cleanly()
    with running_server(tmp_path, "--no-scheduler") as second:
        second.stop_cleanly()
        assert TOKEN.search(second.output) is None, second.output
    listed = CliRunner().invoke(cli, ["keys", "list"], env={"SIGMAX_HOME": str(tmp_path)})
    assert listed.exit_code == 0
    assert "admin" in listed.output
    assert "created at first start" in listed.output
    assert match.group(0) not in listed.output


def test_a_non_loopback_address_is_refused_without_keys(tmp_path: Path) -> None:
    env = {"SIGMAX_HOME": str(tmp_path)}
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"], env=env)
    assert result.exit_code != 0
    assert "refusing to listen on 0.0.0.0 with no API key" in result.output
    assert "sigmax keys create --scope admin" in result.output
    listed = CliRunner().invoke(cli, ["keys", "list"], env=env)
    assert "no API keys" in listed.output, "the refusal must not have made a key"


def test_a_key_revoked_from_another_process_is_refused_within_a_second(tmp_path: Path) -> None:
    token = create_key(tmp_path, "read", "soon revoked")
    with running_server(tmp_path, "--no-scheduler") as server, server.client(token) as client:
        assert client.get("/version").status_code == 200
        key_id = token.split("_")[1]
        revoked = CliRunner().invoke(
            cli, ["keys", "revoke", key_id], env={"SIGMAX_HOME": str(tmp_path)}
        )
        assert revoked.exit_code == 0, revoked.output
        revoked_at = time.monotonic()
        wait_for("the revoked key's refusal", lambda: client.get("/version").status_code == 401)
        assert time.monotonic() - revoked_at <= VERIFIED_FOR_SECONDS + 0.5
        refused = client.get("/version")
        assert refused.json()["error"]["code"] == "unauthorized"
        server.stop_cleanly()


def test_the_scheduler_decides_each_close_and_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    """At 600x a 5m candle closes every half second: the scheduler decides both symbols at
    each close. A SIGTERM with a stream open ends the service without a partial record."""
    token = create_key(tmp_path, "read")
    with running_server(tmp_path, SIGMAX_SERVICE__SIM_SPEED="600") as server:
        with server.client(token) as client:

            def decided_enough() -> bool:
                scheduler = client.get("/health").json()["components"]["scheduler"]
                return bool(scheduler["decisions"] >= 8)

            wait_for("8 scheduled decisions", decided_enough)
            report = client.get("/health").json()
        scheduler = report["components"]["scheduler"]
        assert scheduler["running"] is True
        assert scheduler["mode"] == "sim"
        assert scheduler["errors"] == 0, scheduler
        assert all(not feed["stale"] for feed in report["components"]["feeds"])

        stream_ended = threading.Event()

        def hold_a_stream_open() -> None:
            with (
                server.client(token) as client,
                client.stream("GET", "/stream", timeout=60.0) as response,
            ):
                for _ in response.iter_lines():
                    pass
            stream_ended.set()

        threading.Thread(target=hold_a_stream_open, daemon=True).start()
        time.sleep(0.5)
        started = time.monotonic()
        server.stop_cleanly(timeout=30.0)
        assert time.monotonic() - started < 10.0, "an open stream held the shutdown up"
        assert stream_ended.wait(5.0)

    records = stored_records(tmp_path)
    assert len(records) >= 8
    for decision, turn_rows in records:
        assert decision.mode == "sim"
        assert turn_rows == len(decision.debate), "a decision stored without all its turns"
    by_symbol: dict[str, list[int]] = {}
    for decision, _ in records:
        by_symbol.setdefault(decision.symbol, []).append(parse_timestamp(decision.as_of))
    assert set(by_symbol) == {"BTC/USDT", "ETH/USDT"}
    for instants in by_symbol.values():
        assert all(later > earlier for earlier, later in itertools.pairwise(instants))
        assert all(instant % STEP == 0 for instant in instants), "decided at candle closes"


def test_a_replay_decides_each_close_to_the_end_of_the_file(tmp_path: Path) -> None:
    """A candle file written from the simulator, replayed at 6,000x (20 candles a second)."""
    start = parse_timestamp("2025-03-01T00:00:00Z")
    candles = simulate_candles("SOL/USDT", "5m", start, 300, seed=7)
    path = tmp_path / "SOL_USDT-5m.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for index in range(len(candles)):
            writer.writerow(
                [
                    format_timestamp(int(candles.open_time[index])),
                    *(
                        repr(float(column[index]))
                        for column in (
                            candles.open,
                            candles.high,
                            candles.low,
                            candles.close,
                            candles.volume,
                        )
                    ),
                ]
            )
    token = create_key(tmp_path, "read")
    args = ("--replay", str(path), "--symbol", "SOL/USDT", "--timeframe", "5m", "--speed", "6000")
    with running_server(tmp_path, *args) as server:
        with server.client(token) as client:

            def finished() -> bool:
                scheduler = client.get("/health").json()["components"]["scheduler"]
                return bool(scheduler["finished"])

            wait_for("the replay to finish", finished, timeout=60.0)
            health = client.get("/health").json()["components"]
            scheduler = health["scheduler"]
            listed = client.get("/decisions", params={"limit": 500}).json()["items"]
        server.stop_cleanly()
    last_close = start + 300 * STEP
    first_close = start + 250 * STEP + STEP  # a full lookback (250 bars) before the first
    assert scheduler["errors"] == 0, scheduler
    # Data age is read on the market clock: the file's last candle, not a future one.
    (feed,) = health["feeds"]
    assert feed["last_close"] == format_timestamp(last_close)
    assert feed["age_seconds"] >= 0
    assert scheduler["decisions"] + scheduler["skipped_candles"] == (
        (last_close - first_close) // STEP + 1
    )
    assert scheduler["decisions"] == len(listed) >= 25
    assert {item["mode"] for item in listed} == {"replay"}
    assert max(item["as_of"] for item in listed) == last_close
    assert min(item["as_of"] for item in listed) >= first_close
