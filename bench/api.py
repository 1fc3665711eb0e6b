"""REST API under load: GET /decisions?limit=50 from 16 concurrent clients over a database of
100,000 decisions, and POST /control/panic latency while that load runs.

The server is a real `sigmax serve --no-scheduler` subprocess (uvicorn, one process, the
embedded SQLite default) on a loopback port. The load comes from a minimal keep-alive
HTTP/1.1 client on asyncio in this process (httpx would cost more CPU than the server it
measures on a 2-core machine). Each client sends its next request when the previous answer
is read (closed loop). Beside the figures, two anchors: GET /ping under the same load (the
framework's floor) and the same list query called in-process (what HTTP adds).

The database: 1,000 records made by the real decision path on the simulated market (500
instants × BTC/USDT, ETH/USDT), each stored 100 times under its own id, with its debate
turns: 100,000 decisions. Built once into bench/.cache (about a minute) and reused.

    .venv/bin/python -m bench.api              # 10 s of load per figure
    .venv/bin/python -m bench.api --seconds 3  # quicker
    .venv/bin/python -m bench.api --json
"""

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import Settings
from core.timeframes import parse_timestamp
from graph.engine import DecisionEngine
from ingestion.sim_feed import extend_simulation
from storage.api_keys import ApiKeyStore
from storage.candles import CandleStore
from storage.decisions import DecisionStore
from storage.engine import open_database

CACHE = Path(__file__).resolve().parent / ".cache" / "api-100k"
SIGMAX = Path(sys.executable).parent / "sigmax"
DECISIONS = 100_000
REAL_PER_SYMBOL = 500
SYMBOLS = ("BTC/USDT", "ETH/USDT")
STEP = 300_000
LAST_INSTANT = parse_timestamp("2026-01-01T00:00:00Z")
CLIENTS = 16
PANICS = 30
PORT = 18765


@dataclass(frozen=True)
class Figures:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    @classmethod
    def of(cls, latencies: list[float], seconds: float, errors: int) -> "Figures":
        values = np.asarray(latencies, dtype=np.float64) * 1000.0
        p50, p99 = np.percentile(values, [50, 99])
        return cls(
            requests=len(values),
            seconds=round(seconds, 2),
            rps=round(len(values) / seconds, 1),
            p50_ms=round(float(p50), 2),
            p99_ms=round(float(p99), 2),
            max_ms=round(float(values.max()), 2),
            errors=errors,
        )


def build_database(home: Path) -> None:
    """Real decisions on the simulated market, then copies under new ids up to DECISIONS."""
    settings = Settings(home=home)
    database = open_database(settings.resolved_database_url)
    store = CandleStore(database.session_factory)
    bars = REAL_PER_SYMBOL + settings.lookback_bars + 10
    for symbol in SYMBOLS:
        extend_simulation(store, symbol, "5m", LAST_INSTANT, bars, settings.seed)
    engine = DecisionEngine(settings, database)
    decisions = DecisionStore(database)
    first = LAST_INSTANT - (REAL_PER_SYMBOL - 1) * STEP
    real = [
        engine.decide(symbol, "5m", first + index * STEP, place_orders=False)
        for index in range(REAL_PER_SYMBOL)
        for symbol in SYMBOLS
    ]
    copies = DECISIONS // len(real) - 1
    for _ in range(copies):
        decisions.save_all(
            [(decision.model_copy(update={"id": str(uuid.uuid4())}), ()) for decision in real]
        )
    database.dispose()


async def request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """One request on a keep-alive connection; the status and body of the answer."""
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def raw_request(method: str, path: str, token: str, body: dict[str, Any] | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{PORT}",
        f"Authorization: Bearer {token}",
        f"Content-Length: {len(payload)}",
        *(["Content-Type: application/json"] if body is not None else []),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def load(
    raw: bytes, seconds: float, panic: bytes | None, resume: bytes | None
) -> tuple[Figures, Figures | None, Figures | None]:
    """CLIENTS closed-loop clients for ``seconds``; optionally PANICS panics spread over it:
    the load, the panics as the client saw them, the panics by their own clock."""
    latencies: list[float] = []
    inside: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, _ = await request(reader, writer, raw)
            latencies.append(time.perf_counter() - started)
            errors += status != 200
        writer.close()

    async def panicker() -> Figures:
        assert panic is not None
        assert resume is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        samples: list[float] = []
        failures = 0
        for _ in range(PANICS):
            await asyncio.sleep(seconds / (PANICS + 1) / 2)
            started = time.perf_counter()
            status, body = await request(reader, writer, panic)
            samples.append(time.perf_counter() - started)
            failures += status != 200
            if status == 200:
                # The panic's own clock: from its call to its last step, inside the server.
                inside.append(json.loads(body)["steps"][-1]["elapsed_ms"] / 1000.0)
            await asyncio.sleep(seconds / (PANICS + 1) / 2)
            await request(reader, writer, resume)
        writer.close()
        return Figures.of(samples, seconds, failures)

    started = time.perf_counter()
    clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    panics = asyncio.create_task(panicker()) if panic is not None else None
    await asyncio.gather(*clients)
    elapsed = time.perf_counter() - started
    panic_figures = await panics if panics else None
    inside_figures = Figures.of(inside, elapsed, 0) if inside else None
    return Figures.of(latencies, elapsed, errors), panic_figures, inside_figures


def in_process_list_us(home: Path, repeats: int = 2000) -> float:
    database = open_database(Settings(home=home).resolved_database_url)
    store = DecisionStore(database)
    store.list(limit=50)
    started = time.perf_counter()
    for _ in range(repeats):
        store.list(limit=50)
    elapsed = (time.perf_counter() - started) / repeats * 1e6
    database.dispose()
    return round(elapsed, 1)


def start_server(home: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SIGMAX_HOME": str(home),
        "SIGMAX_API__MUTATION_BURST": "1000",
        "SIGMAX_API__MUTATIONS_PER_MINUTE": "100000",
    }
    process = subprocess.Popen(
        [str(SIGMAX), "serve", "--no-scheduler", "--port", str(PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            asyncio.run(_ping())
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


async def _ping() -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", PORT)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per figure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if not (CACHE / "sigmax.db").exists():
        print(f"building {DECISIONS:,} decisions in {CACHE} (once) …", file=sys.stderr)
        CACHE.mkdir(parents=True, exist_ok=True)
        build_database(CACHE)
    database = open_database(Settings(home=CACHE).resolved_database_url)
    stored = len(DecisionStore(database).list(limit=1))
    count = DecisionStore(database).newest_seq()
    keys = ApiKeyStore(database)
    read = keys.create("read", "bench", 0).token
    admin = keys.create("admin", "bench", 0).token
    database.dispose()
    assert stored == 1

    server = start_server(CACHE)
    try:
        listing = raw_request("GET", "/api/v1/decisions?limit=50", read)
        asyncio.run(load(listing, 4.0, None, None))  # warm-up
        decisions, panic, panic_inside = asyncio.run(
            load(
                listing,
                args.seconds,
                raw_request("POST", "/api/v1/control/panic", admin, {"reason": "bench"}),
                raw_request("POST", "/api/v1/control/resume", admin, {"reason": "bench"}),
            )
        )
        ping, _, _ = asyncio.run(
            load(raw_request("GET", "/api/v1/ping", read), args.seconds, None, None)
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    result = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "decisions_stored": count,
        "clients": CLIENTS,
        "get_decisions_limit_50": asdict(decisions),
        "panic_under_load": asdict(panic) if panic else None,
        "panic_inside_server": asdict(panic_inside) if panic_inside else None,
        "anchor_get_ping": asdict(ping),
        "anchor_in_process_list_50_us": in_process_list_us(CACHE),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['machine']}; {count:,} decisions; {CLIENTS} concurrent clients")
    for name, figures in (("GET /decisions?limit=50", decisions), ("anchor: GET /ping", ping)):
        print(
            f"  {name:<42} {figures.rps:>8.1f} rps  p50 {figures.p50_ms:6.2f} ms  "
            f"p99 {figures.p99_ms:6.2f} ms  max {figures.max_ms:6.2f} ms  "
            f"({figures.requests} requests, {figures.errors} errors)"
        )
    for name, timed in (
        ("POST /control/panic under that load", panic),
        ("  of which inside the panic (its own clock)", panic_inside),
    ):
        if timed is not None:
            print(
                f"  {name:<42} {'':>12}  p50 {timed.p50_ms:6.2f} ms  p99 {timed.p99_ms:6.2f} ms  "
                f"max {timed.max_ms:6.2f} ms  ({timed.requests} panics, {timed.errors} errors)"
            )
    print(f"  anchor: the same list in-process: {result['anchor_in_process_list_50_us']} µs a call")


if __name__ == "__main__":
    main()
