"""Every route × (no key, a wrong key, read, trade, admin) → the expected status, on a real
server. The route list comes from the server's own OpenAPI: a new route without a row
here fails the test."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import Server, create_key, running_server

from core.timeframes import now_ms
from ingestion.sim_feed import extend_simulation
from storage.candles import CandleStore
from storage.engine import open_database

PREFIX = "/api/v1"
RANK = {"read": 0, "trade": 1, "admin": 2}

# (method, path) → the narrowest scope that may call it (None: no key needed). In the order
# the matrix runs them: the changes last, the panic at the very end.
REQUIRED: dict[tuple[str, str], str | None] = {
    ("GET", "/ping"): None,
    ("GET", "/version"): "read",
    ("GET", "/health"): "read",
    ("GET", "/metrics"): "read",
    ("GET", "/decisions"): "read",
    ("GET", "/decisions/{decision_id}"): "read",
    ("GET", "/decisions/{decision_id}/debate"): "read",
    ("GET", "/debates"): "read",
    ("GET", "/control/state"): "read",
    ("GET", "/safety/events"): "read",
    ("GET", "/positions"): "read",
    ("GET", "/orders"): "read",
    ("GET", "/portfolio"): "read",
    ("GET", "/stream"): "read",
    ("POST", "/decisions"): "trade",
    ("POST", "/control/pause"): "admin",
    ("POST", "/control/resume"): "admin",
    ("POST", "/control/panic"): "admin",
}
BODIES: dict[str, dict[str, Any]] = {
    "/decisions": {"symbol": "BTC/USDT"},
    "/control/pause": {"reason": "auth matrix"},
    "/control/resume": {"reason": "auth matrix"},
    "/control/panic": {"reason": "auth matrix"},
}
WRONG_KEY = "sgx_000000000000_not-a-real-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    home = tmp_path_factory.mktemp("auth")
    database = open_database(f"sqlite:///{home / 'sigmax.db'}")
    extend_simulation(CandleStore(database.session_factory), "BTC/USDT", "5m", now_ms(), 300, 42)
    database.dispose()
    tokens = {scope: create_key(home, scope) for scope in RANK}
    with running_server(home, "--no-scheduler") as running:
        yield running, tokens
        running.stop_cleanly()


def status_of(server: Server, method: str, path: str, token: str | None) -> int:
    with server.client(token) as client:
        if path == "/stream":
            with client.stream("GET", path) as response:
                return response.status_code
        body = BODIES.get(path) if method == "POST" else None
        return client.request(method, path, json=body).status_code


def expected(method: str, path: str, required: str | None, scope: str | None) -> int:
    if required is not None and scope not in RANK:
        return 401
    if required is not None and scope is not None and RANK[scope] < RANK[required]:
        return 403
    return 201 if (method, path) == ("POST", "/decisions") else 200


def test_every_route_answers_each_key_as_its_scope_allows(
    server: tuple[Server, dict[str, str]],
) -> None:
    running, tokens = server
    schema = httpx.get(running.base_url.removesuffix(PREFIX) + "/openapi.json").json()
    routes = {
        (method.upper(), path.removeprefix(PREFIX))
        for path, operations in schema["paths"].items()
        for method in operations
    }
    assert routes == set(REQUIRED), "every route needs its row in REQUIRED"

    with running.client(tokens["trade"]) as client:
        decision_id = client.post("/decisions", json=BODIES["/decisions"]).json()["id"]
    mismatches = []
    callers: list[tuple[str | None, str | None]] = [
        (None, None),
        ("wrong", WRONG_KEY),
        *((scope, tokens[scope]) for scope in RANK),
    ]
    for (method, template), required in REQUIRED.items():
        path = template.replace("{decision_id}", decision_id)
        for scope, token in callers:
            want = expected(method, template, required, scope)
            got = status_of(running, method, path, token)
            if got != want:
                mismatches.append(f"{method} {template} as {scope}: {got}, expected {want}")
    assert mismatches == []


def test_refusals_say_why_in_the_error_shape(server: tuple[Server, dict[str, str]]) -> None:
    running, tokens = server
    with running.client() as anonymous:
        missing = anonymous.get("/decisions")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    with running.client(tokens["read"]) as reader:
        narrow = reader.post("/control/panic", json={"reason": "not allowed"})
    assert narrow.status_code == 403
    assert "needs a admin key" in narrow.json()["error"]["message"]


def test_mutations_are_rate_limited_per_key_but_panic_never(tmp_path: Path) -> None:
    token = create_key(tmp_path, "admin")
    env = {"SIGMAX_API__MUTATION_BURST": "3", "SIGMAX_API__MUTATIONS_PER_MINUTE": "1"}
    with running_server(tmp_path, "--no-scheduler", **env) as running:
        with running.client(token) as client:
            statuses = [
                client.post("/control/pause", json={"reason": f"pause {n}"}).status_code
                for n in range(4)
            ]
            assert statuses == [200, 200, 200, 429]
            limited = client.post("/control/resume", json={"reason": "too soon"})
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.json()["error"]["code"] == "rate_limited"
            panics = [
                client.post("/control/panic", json={"reason": f"panic {n}"}).status_code
                for n in range(5)
            ]
            assert panics == [200] * 5
        running.stop_cleanly()
