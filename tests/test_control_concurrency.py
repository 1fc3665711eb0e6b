"""No order after the panic, from any thread or process, on SQLite and PostgreSQL.

20 symbols place paper orders concurrently while a panic fires mid-run, many times over.
Orders and control changes are ordered by the journal sequence the database hands out,
never by wall clocks: no order other than a reduce-only one may carry a number above the
HALTED change's, and none placed before it may be left open.
"""

import multiprocessing
import random
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from broker_helpers import order, orders_placed_between, place_orders_until_stopped

from core.settings import Settings
from core.timeframes import timeframe_ms
from execution.paper import PaperBroker
from graph.engine import DecisionEngine
from ingestion.sim import simulate_candles
from safety.control import ControlService
from storage.candles import CandleStore
from storage.control import ControlStore
from storage.engine import Database
from storage.models import OrderRow

SYMBOLS = [f"SYM{index:02d}/USDT" for index in range(20)]
THREAD_ITERATIONS = 30
PROCESS_ROUNDS = 3
# Waits for other threads and processes: generous, so a slow machine only runs longer.
PATIENCE_S = 30.0


def symbols_ordering_since(database: Database, after_seq: int) -> set[str]:
    with database.session_factory() as session:
        return set(
            session.scalars(
                sa.select(OrderRow.symbol).where(OrderRow.journal_seq > after_seq).distinct()
            )
        )


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


def panic_under_load(
    iteration: int,
    broker: PaperBroker,
    service: ControlService,
    control: ControlStore,
    orders_before_panic: int,
) -> tuple[int, list[bool]]:
    """20 deciding threads submit until each is refused under HALTED; the panic fires once
    ``orders_before_panic`` orders are in. Returns the HALTED journal number and, per thread,
    whether it was refused for HALTED."""
    accepted = Counter()
    refused_for_halt = [False] * len(SYMBOLS)
    failures: list[BaseException] = []

    def decide_and_submit(worker: int) -> None:
        symbol = SYMBOLS[worker]
        try:
            for attempt in range(100_000):
                # What a decision's gate reads; by the time the order goes, it may be stale.
                control.current(symbol)
                request = order(
                    symbol,
                    size=1e-6,
                    reference_price=100.0,
                    not_before=0,
                    client_order_id=f"{iteration}-{worker}-{attempt}",
                )
                outcome = broker.submit(request, now_ms=attempt)
                if outcome.status == "accepted":
                    accepted.add()
                elif outcome.reason.startswith("HALTED"):
                    refused_for_halt[worker] = True
                    return
        except BaseException as error:  # surfaced by the main thread
            failures.append(error)

    threads = [threading.Thread(target=decide_and_submit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + PATIENCE_S
    while accepted.value < orders_before_panic and time.monotonic() < deadline:
        time.sleep(0.0005)
    report = service.panic("operator", f"drill {iteration}", now_ms=iteration)
    for thread in threads:
        thread.join(PATIENCE_S)
    assert not failures, failures
    assert report.ok, report.errors
    assert report.halted_journal_seq is not None
    return report.halted_journal_seq, refused_for_halt


def test_threads_place_no_order_after_the_panic(database: Database, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    broker = PaperBroker(database, settings.paper)
    service = ControlService(database, broker, settings)
    control = ControlStore(database)
    chance = random.Random(3)
    for iteration in range(THREAD_ITERATIONS):
        halted_seq, refused = panic_under_load(
            iteration, broker, service, control, orders_before_panic=chance.randint(5, 60)
        )
        assert orders_placed_between(database, halted_seq, None) == 0, iteration
        assert broker.open_orders() == [], iteration
        assert all(refused), iteration
        service.resume("operator", f"drill {iteration} over", now_ms=iteration)


def test_processes_place_no_order_after_the_panic(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    broker = PaperBroker(database, settings.paper)
    service = ControlService(database, broker, settings)
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    results = spawn.Queue()
    workers = [
        spawn.Process(
            target=place_orders_until_stopped, args=(database_url, SYMBOLS[n::3], stop, results)
        )
        for n in range(3)
    ]
    for worker in workers:
        worker.start()
    windows: list[tuple[int, int]] = []
    try:
        for round_ in range(PROCESS_ROUNDS):
            # Every process is placing orders before each panic.
            deadline = time.monotonic() + PATIENCE_S
            since = windows[-1][1] if windows else 0
            while len(symbols_ordering_since(database, since)) < len(SYMBOLS):
                assert time.monotonic() < deadline, "the worker processes placed no orders"
                time.sleep(0.01)
            report = service.panic("operator", f"drill {round_}", now_ms=round_)
            assert report.ok, report.errors
            assert broker.open_orders() == []
            time.sleep(0.5)  # the workers keep trying, and are refused
            resumed = service.resume("operator", f"drill {round_} over", now_ms=round_)
            assert report.halted_journal_seq is not None
            assert resumed.journal_seq is not None
            windows.append((report.halted_journal_seq, resumed.journal_seq))
    finally:
        stop.set()
        tallies = [results.get(timeout=PATIENCE_S) for _ in workers]
        for worker in workers:
            worker.join(PATIENCE_S)
    for halted_seq, resumed_seq in windows:
        assert orders_placed_between(database, halted_seq, resumed_seq) == 0
    # Every process traded; the processes were refused under HALTED (a busy machine may
    # not schedule each one inside every window, so the refusals are counted together).
    assert all(tally.get("accepted", 0) > 0 for tally in tallies)
    assert sum(tally.get("refused", 0) for tally in tallies) > 0
    assert all(worker.exitcode == 0 for worker in workers)


def test_twenty_symbols_deciding_concurrently_send_nothing_after_the_panic(
    database: Database, tmp_path: Path
) -> None:
    """The whole decision path, not the broker alone: 20 threads each decide their symbol
    bar after bar (approved buys go to the paper broker) while a panic fires mid-run."""
    step = timeframe_ms("5m")
    start = 1_700_000_000_000 - 1_700_000_000_000 % step
    store = CandleStore(database.session_factory)
    for symbol in SYMBOLS:
        store.insert_candles(simulate_candles(symbol, "5m", start, 300, seed=7))
    settings = Settings(home=tmp_path / "home", symbols=tuple(SYMBOLS))
    engine = DecisionEngine(settings, database)
    first_bar = start + 280 * step
    decided = threading.Semaphore(0)
    failures: list[BaseException] = []

    def decide_bar_after_bar(symbol: str) -> None:
        try:
            for bar in range(16):
                engine.decide(symbol, "5m", first_bar + bar * step)
                decided.release()
        except BaseException as error:  # the test reports it, with its thread's symbol
            failures.append(error)

    threads = [threading.Thread(target=decide_bar_after_bar, args=(s,)) for s in SYMBOLS]
    for thread in threads:
        thread.start()
    for _ in range(80):  # a quarter of the run decided, then the panic
        assert decided.acquire(timeout=PATIENCE_S), "the deciding threads stalled"
    report = engine.control.panic("operator", "drill under decisions", now_ms=first_bar)
    for thread in threads:
        thread.join(PATIENCE_S)
    assert not failures, failures
    assert report.ok, report.errors
    assert report.halted_journal_seq is not None
    with database.session_factory() as session:
        before = session.scalar(
            sa.select(sa.func.count()).where(OrderRow.journal_seq < report.halted_journal_seq)
        )
    assert before, "the decisions placed no order before the panic: the test proves nothing"
    assert orders_placed_between(database, report.halted_journal_seq, None) == 0
    assert engine.broker.open_orders() == []
