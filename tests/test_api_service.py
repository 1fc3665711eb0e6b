"""The REST service as a user meets it: a real `sigmax serve` on a loopback port, driven with
httpx — trigger, list, inspect, debates, the event stream, bad input, health, metrics, panic.

The server's market is the seeded simulation, stored up to a fixed instant before the
server starts, so the decisions asked for at instants up to then are reproducible.
"""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import Server, create_key, running_server

from core.decision import Decision
from core.timeframes import format_timestamp, parse_timestamp
from ingestion.sim_feed import extend_simulation
from storage.candles import CandleStore
from storage.engine import open_database

FIXED = parse_timestamp("2026-01-01T00:00:00Z")
STEP = 300_000
SIMULATED_BARS = 700


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("service")
    database = open_database(f"sqlite:///{home / 'sigmax.db'}")
    store = CandleStore(database.session_factory)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        extend_simulation(store, symbol, "5m", FIXED, SIMULATED_BARS, seed=42)
    database.dispose()
    return home


@pytest.fixture(scope="module")
def tokens(home: Path) -> dict[str, str]:
    return {scope: create_key(home, scope) for scope in ("read", "trade", "admin")}


@pytest.fixture(scope="module")
def server(home: Path, tokens: dict[str, str]) -> Iterator[Server]:
    del tokens  # made before the start, so the server creates none
    with running_server(
        home,
        "--no-scheduler",
        SIGMAX_API__MUTATION_BURST="1000",
        SIGMAX_SERVICE__STREAM_POLL_MS="50",
    ) as running:
        yield running
        running.stop_cleanly()


@pytest.fixture(scope="module")
def trade(server: Server, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with server.client(tokens["trade"]) as client:
        yield client


@pytest.fixture(scope="module")
def admin(server: Server, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with server.client(tokens["admin"]) as client:
        yield client


def decide(client: httpx.Client, symbol: str, as_of: int) -> dict[str, Any]:
    response = client.post(
        "/decisions", json={"symbol": symbol, "timeframe": "5m", "as_of": format_timestamp(as_of)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_fields(response: httpx.Response) -> list[str]:
    """The fields an error response names (and its shape checked on the way)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return [detail["field"] for detail in body["error"]["details"]]


def test_trigger_then_inspect_the_record_and_its_debate(trade: httpx.Client) -> None:
    created = decide(trade, "BTC/USDT", FIXED)
    record = Decision.model_validate(created)
    assert record.as_of == "2026-01-01T00:00:00Z"
    assert record.mode == "sim"
    assert record.debate, "a full window gives a debate"

    fetched = trade.get(f"/decisions/{record.id}")
    assert fetched.status_code == 200
    assert fetched.json() == created

    debate = trade.get(f"/decisions/{record.id}/debate").json()
    assert debate["decision_id"] == record.id
    assert debate["verdict"] == created["signals"]["debate"]
    assert debate["turns"] == created["debate"]

    history = trade.get("/debates", params={"symbol": "BTC/USDT"}).json()
    assert history["items"][0]["decision_id"] == record.id
    assert history["items"][0]["turns"] == created["debate"]


def test_unknown_ids_answer_404_in_the_error_shape(trade: httpx.Client) -> None:
    for path in ("/decisions/no-such-id", "/decisions/no-such-id/debate"):
        response = trade.get(path)
        assert response.status_code == 404
        assert error_fields(response) == []
        assert response.json()["error"]["code"] == "not_found"
    unknown_route = trade.get("/no-such-route")
    assert unknown_route.status_code == 404
    assert unknown_route.json()["error"]["code"] == "not_found"


def test_list_pages_through_everything_once_newest_first(trade: httpx.Client) -> None:
    posted = [
        decide(trade, symbol, FIXED - k * STEP)["id"]
        for k in range(1, 5)
        for symbol in ("BTC/USDT", "ETH/USDT")
    ]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = trade.get("/decisions", params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
    sequence = [item["seq"] for item in seen]
    assert sequence == sorted(sequence, reverse=True)
    assert len(set(sequence)) == len(sequence)
    assert set(posted) <= {item["id"] for item in seen}

    eth = trade.get("/decisions", params={"symbol": "ETH/USDT", "limit": 500}).json()["items"]
    assert eth
    assert {item["symbol"] for item in eth} == {"ETH/USDT"}
    window = trade.get(
        "/decisions",
        params={
            "since": format_timestamp(FIXED - 2 * STEP),
            "until": format_timestamp(FIXED - STEP),
            "limit": 500,
        },
    ).json()["items"]
    assert {item["as_of"] for item in window} == {FIXED - 2 * STEP, FIXED - STEP}
    assert len(window) == 4
    hold = trade.get("/decisions", params={"action": "hold", "limit": 500}).json()["items"]
    assert all(item["action"] == "hold" for item in hold)


def test_bad_input_is_refused_naming_the_field_and_stores_nothing(trade: httpx.Client) -> None:
    before = len(trade.get("/decisions", params={"limit": 500}).json()["items"])
    cases: list[tuple[Any, str]] = [
        ({"symbol": "btc-usdt"}, "body.symbol"),
        ({"symbol": "XRP/USDT"}, "body.symbol"),  # well formed, but no candles stored
        ({"symbol": "BTC/USDT", "timeframe": "7x"}, "body.timeframe"),
        ({"symbol": "BTC/USDT", "as_of": "yesterday-ish"}, "body.as_of"),
        ({"symbol": "BTC/USDT", "as_of": "2999-01-01T00:00:00Z"}, "body.as_of"),
        ({"symbol": "BTC/USDT", "size": 1}, "body.size"),
        ({}, "body.symbol"),
    ]
    for body, field in cases:
        response = trade.post("/decisions", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in error_fields(response), (body, response.json())
    malformed = trade.post(
        "/decisions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    for params, field in (
        ({"limit": 0}, "query.limit"),
        ({"cursor": "abc"}, "query.cursor"),
        ({"since": "soon"}, "query.since"),
        ({"action": "short"}, "query.action"),
        ({"symbol": "btc"}, "query.symbol"),
    ):
        response = trade.get("/decisions", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in error_fields(response)
    assert len(trade.get("/decisions", params={"limit": 500}).json()["items"]) == before


def test_the_stream_sends_a_decision_as_it_is_stored(server: Server, trade: httpx.Client) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    connected = threading.Event()

    def listen() -> None:
        with (
            server.client(trade.headers["Authorization"].removeprefix("Bearer ")) as client,
            client.stream("GET", "/stream", timeout=20.0) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name is not None:
                    events.append((name, json.loads(line.removeprefix("data: "))))
                    if name == "decision":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10), "the stream did not open"
    created = decide(trade, "ETH/USDT", FIXED)
    listener.join(15)
    decisions = [data for name, data in events if name == "decision"]
    assert decisions, f"no decision event arrived; saw {events}"
    assert decisions[0]["id"] == created["id"]
    assert decisions[0]["action"] == created["safety"]["action"]


def test_health_and_metrics_report_each_component(
    server: Server, tokens: dict[str, str], trade: httpx.Client
) -> None:
    with server.client(tokens["read"]) as reader:
        health = reader.get("/health")
        assert health.status_code == 200
        report = health.json()
        assert report["components"]["database"]["ok"] is True
        feeds = {feed["symbol"]: feed for feed in report["components"]["feeds"]}
        assert set(feeds) == {"BTC/USDT", "ETH/USDT"}
        # The stored simulation ends at FIXED and this server runs no scheduler: stale data.
        assert feeds["BTC/USDT"]["last_close"] == "2026-01-01T00:00:00Z"
        assert feeds["BTC/USDT"]["stale"] is True
        assert report["status"] == "degraded"
        assert report["components"]["scheduler"] is None
        assert report["components"]["control"]["state"] == "ACTIVE"

        metrics = reader.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
    listed = trade.get("/decisions", params={"limit": 500}).json()["items"]
    counted: dict[str, float] = {}
    for line in metrics.text.splitlines():
        if line.startswith("sigmax_decisions_total{"):
            labels, value = line.rsplit(" ", 1)
            counted[labels] = float(value)
    assert sum(counted.values()) == len(listed)
    assert 'sigmax_control_state{scope="global",state="ACTIVE"} 1.0' in metrics.text
    assert 'sigmax_data_age_seconds{symbol="BTC/USDT",timeframe="5m"}' in metrics.text
    assert 'sigmax_node_latency_seconds_count{node="gate"}' in metrics.text


def test_a_decision_in_the_past_is_stored_but_places_no_order(trade: httpx.Client) -> None:
    """Its order would fill at opens already known: trading in hindsight."""
    for k in range(150, 0, -1):
        record = decide(trade, "BTC/USDT", FIXED - k * STEP)
        if record["safety"]["verdict"] != "blocked" and record["safety"]["action"] == "buy":
            break
    else:
        pytest.fail("no approved buy in 150 past candles")
    assert record["execution"] == {
        "status": "not_executed",
        "reason": "decide-only run: no order sent",
        "orders": [],
    }
    assert trade.get("/orders").json()["items"] == []


def test_a_configured_symbol_is_decided_now_on_request(trade: httpx.Client) -> None:
    """--no-scheduler: the simulated market is brought up to now for the request."""
    record = decide_now(trade, "ETH/USDT")
    freshness = next(c for c in record["safety"]["checks"] if c["name"] == "data_freshness")
    assert freshness["passed"] is True, freshness


def decide_now(client: httpx.Client, symbol: str) -> dict[str, Any]:
    response = client.post("/decisions", json={"symbol": symbol})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def trading_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """The simulated market at 600x (a 5m candle each half second), the scheduler on, the
    aggressive profile: orders come quickly."""
    home = tmp_path_factory.mktemp("trading")
    admin = create_key(home, "admin")
    env = {
        "SIGMAX_SERVICE__SIM_SPEED": "600",
        "SIGMAX_RISK_PROFILE": "aggressive",
        "SIGMAX_API__MUTATION_BURST": "1000",
    }
    with running_server(home, **env) as running:
        yield running, admin
        running.stop_cleanly()


def test_panic_then_nothing_goes_out_from_the_scheduler_or_a_request(
    trading_server: tuple[Server, str],
) -> None:
    server, admin_token = trading_server
    deadline = time.monotonic() + 90
    with server.client(admin_token) as admin:
        while not admin.get("/orders", params={"limit": 500}).json()["items"]:
            assert time.monotonic() < deadline, "no order in 90 s of simulated trading"
            decide_now(admin, "BTC/USDT")
            time.sleep(0.2)
        panic = admin.post("/control/panic", json={"reason": "test incident"})
        assert panic.status_code == 200, panic.text
        report = panic.json()
        assert report["steps"][0]["name"] == "halt"
        assert report["steps"][0]["ok"] is True
        assert admin.get("/control/state").json()["global"]["state"] == "HALTED"
        assert admin.get("/orders", params={"status": "open"}).json()["items"] == []
        orders_after_panic = admin.get("/orders", params={"limit": 500}).json()["items"]

        blocked = decide_now(admin, "BTC/USDT")
        assert blocked["safety"]["verdict"] == "blocked"
        assert blocked["safety"]["control_state"] == "HALTED"
        assert blocked["execution"]["status"] == "not_executed"
        scheduled_before = admin.get("/health").json()["components"]["scheduler"]["decisions"]
        time.sleep(2.0)  # four candle closes: the scheduler decides on, under HALTED
        health = admin.get("/health").json()["components"]["scheduler"]
        assert health["decisions"] >= scheduled_before + 4
        assert admin.get("/orders", params={"limit": 500}).json()["items"] == orders_after_panic
        listed = admin.get("/decisions", params={"limit": 4}).json()["items"]
        assert {item["verdict"] for item in listed} == {"blocked"}

        again = admin.post("/control/panic", json={"reason": "again"})
        assert again.json()["already_halted"] is True
