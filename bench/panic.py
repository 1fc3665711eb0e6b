"""Panic latency: from the panic call to HALTED persisted, and to every open order cancelled.

20 symbols are active: one worker thread per symbol places small paper buys back to back,
so the control guard is always contended and every symbol holds open orders when the panic
fires. Each run resumes, waits until every symbol has an open order, panics, and reads the
step times ControlService.panic measured from its call. After each run the promise itself
is checked: no order but a reduce-only one numbered after HALTED, and nothing left open.
``orders/s`` is the orders accepted per second over the whole measurement, halts included.

    .venv/bin/python -m bench.panic            # 200 runs per database
    .venv/bin/python -m bench.panic --quick    # 30 runs
    .venv/bin/python -m bench.panic --json     # machine-readable

SQLite: a temporary file (the embedded default). PostgreSQL: $SIGMAX_BENCH_POSTGRES_URL
(or --postgres-url), in a schema of its own that is dropped afterwards; skipped, with the
reason, when the server cannot be reached. It measures, it does not judge.
"""

import argparse
import itertools
import json
import os
import platform
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from core.settings import Settings
from core.trading import OrderRequest
from execution.paper import PaperBroker
from safety.control import ControlService
from storage.engine import Database, open_database
from storage.models import OrderRow

SYMBOLS = tuple(f"BENCH{index:02d}/USDT" for index in range(20))
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WARMUP_RUNS = 3
# How long a run may wait for every symbol to hold an open order again after a resume.
REFILL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Stats:
    n: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: list[float]) -> "Stats":
        values = np.asarray(samples, dtype=np.float64)
        p50, p99 = np.percentile(values, [50, 99])
        return cls(n=len(values), p50=float(p50), p99=float(p99), max=float(values.max()))


@dataclass(frozen=True)
class Result:
    database: str
    halted_ms: Stats
    cancelled_ms: Stats
    orders_cancelled_median: float
    orders_placed_per_s: float


class Workers:
    """One thread per symbol placing small buys back to back until stopped."""

    def __init__(self, broker: PaperBroker) -> None:
        self._broker = broker
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._place, args=(symbol,), daemon=True) for symbol in SYMBOLS
        ]
        self.accepted = 0
        self._counted = threading.Lock()
        self.errors: list[str] = []

    def __enter__(self) -> "Workers":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _place(self, symbol: str) -> None:
        for index in itertools.count():
            if self._stop.is_set():
                return
            request = OrderRequest(
                client_order_id=f"{symbol}-{index}",
                symbol=symbol,
                timeframe="5m",
                side="buy",
                size_fraction=1e-6,
                reference_price=100.0,
                not_before=0,
            )
            try:
                outcome = self._broker.submit(request, now_ms=index)
            except Exception as error:  # reported at the end; the bench goes on
                self.errors.append(f"{symbol}: {type(error).__name__}: {error}")
                continue
            if outcome.status == "accepted":
                with self._counted:
                    self.accepted += 1


def measure(label: str, database: Database, home: Path, runs: int) -> Result:
    settings = Settings(home=home, symbols=SYMBOLS)
    broker = PaperBroker(database, settings.paper)
    service = ControlService(database, broker, settings)
    halted: list[float] = []
    cancelled: list[float] = []
    counts: list[int] = []
    with Workers(broker) as workers:
        started = time.perf_counter()
        for run in range(WARMUP_RUNS + runs):
            service.resume("bench", f"run {run}", now_ms=run)
            wait_for_open_orders(broker)
            report = service.panic("bench", f"run {run}", now_ms=run)
            check(database, broker, report.halted_journal_seq, report.errors)
            if run >= WARMUP_RUNS:
                halt_step, cancel_step = report.steps[0], report.steps[1]
                halted.append(halt_step.elapsed_ms)
                cancelled.append(cancel_step.elapsed_ms)
                counts.append(len(report.cancelled_order_ids))
        elapsed = time.perf_counter() - started
    if workers.errors:
        raise RuntimeError(f"order placement failed: {workers.errors[:3]}")
    return Result(
        database=label,
        halted_ms=Stats.of(halted),
        cancelled_ms=Stats.of(cancelled),
        orders_cancelled_median=float(np.median(counts)),
        orders_placed_per_s=workers.accepted / elapsed,
    )


def wait_for_open_orders(broker: PaperBroker) -> None:
    deadline = time.monotonic() + REFILL_TIMEOUT_S
    while {order.symbol for order in broker.open_orders()} != set(SYMBOLS):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers placed no orders for some symbols")
        time.sleep(0.005)


def check(
    database: Database, broker: PaperBroker, halted_seq: int | None, errors: dict[str, str]
) -> None:
    """The promise itself: nothing numbered after HALTED but reduce-only, nothing left open."""
    if errors or halted_seq is None:
        raise RuntimeError(f"the panic failed: {errors}")
    with database.session_factory() as session:
        late = session.scalar(
            sa.select(sa.func.count()).where(
                OrderRow.journal_seq > halted_seq, OrderRow.reduce_only.is_(False)
            )
        )
    if late or broker.open_orders():
        raise RuntimeError(f"{late} orders stored after HALTED, or orders left open")


def sqlite_result(runs: int) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        database = open_database(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            return measure("SQLite (WAL file)", database, Path(folder), runs)
        finally:
            database.dispose()


def postgres_result(url: str, runs: int) -> Result | str:
    """The result, or why PostgreSQL was skipped."""
    admin = sa.create_engine(url)
    schema = f"bench_panic_{os.getpid()}"
    try:
        with admin.begin() as connection:
            server = connection.execute(sa.text("SHOW server_version")).scalar_one()
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # unreachable or refused: say so and go on
        admin.dispose()
        return f"PostgreSQL at {admin.url!r} skipped: {type(error).__name__}: {error}"
    try:
        separator = "&" if "?" in url else "?"
        database = open_database(f"{url}{separator}options=-csearch_path%3D{schema}")
        try:
            with tempfile.TemporaryDirectory() as folder:
                label = f"PostgreSQL {server.split()[0]}"
                return measure(label, database, Path(folder), runs)
        finally:
            database.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_1m": os.getloadavg()[0],
    }


def render(runs: int, results: list[Result], skipped: list[str]) -> str:
    lines = [
        f"panic latency: {len(SYMBOLS)} symbols placing orders back to back, {runs} runs "
        "per database, ms from the panic call",
        "",
        f"{'database':<24}{'HALTED persisted':>22}{'all orders cancelled':>24}"
        f"{'cancelled/panic':>17}{'orders/s':>10}",
        f"{'':<24}{'p50 / p99 / max':>22}{'p50 / p99 / max':>24}",
    ]
    for result in results:
        halted, cancelled = result.halted_ms, result.cancelled_ms
        lines.append(
            f"{result.database:<24}"
            f"{f'{halted.p50:.1f} / {halted.p99:.1f} / {halted.max:.1f}':>22}"
            f"{f'{cancelled.p50:.1f} / {cancelled.p99:.1f} / {cancelled.max:.1f}':>24}"
            f"{result.orders_cancelled_median:>17.0f}{result.orders_placed_per_s:>10.0f}"
        )
    lines.extend(skipped)
    info = machine()
    lines.append("")
    lines.append(
        f"{info['cpus']} CPUs, Python {info['python']}, SQLite {info['sqlite']}, "
        f"load {info['load_average_1m']:.2f}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 runs instead of 200")
    parser.add_argument("--runs", type=int, help="runs per database (overrides --quick)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SIGMAX_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
    )
    args = parser.parse_args()
    runs = args.runs or (30 if args.quick else 200)
    results = [sqlite_result(runs)]
    skipped: list[str] = []
    postgres = postgres_result(args.postgres_url, runs)
    if isinstance(postgres, str):
        skipped.append(postgres)
    else:
        results.append(postgres)
    if args.json:
        payload = {
            "machine": machine(),
            "symbols": len(SYMBOLS),
            "runs": runs,
            "results": [asdict(result) for result in results],
            "skipped": skipped,
        }
        print(json.dumps(payload, indent=2))
    else:
        print(render(runs, results, skipped))


if __name__ == "__main__":
    main()
