"""The control guard and the journal sequence: why no order can follow a panic.

An order placement and a control change each run in one guarded transaction:

- PostgreSQL: the order locks the ``control_lock`` table in SHARE mode, a control change in
  EXCLUSIVE mode. A panic therefore waits for orders already past their check to commit,
  and orders arriving meanwhile wait for the panic, then read HALTED. A table lock, not a
  row lock: PostgreSQL queues table locks in arrival order, so a waiting panic holds back
  the SHARE requests behind it, while a stream of overlapping shared row locks, from other
  processes, could keep it waiting for as long as the stream lasts.
- SQLite: the transaction begins IMMEDIATE (``Database.guarded_session_factory``), taking
  the database's single write lock before it reads anything.

Inside the guard the transaction reads the control state and takes its journal number, so
every committed order has a lower number than any HALTED change it did not see.

Within one process, ``guarded_transaction`` also lets a control change go first: it waits
for the guarded transactions already under way, and those arriving after it wait for it.
Without that, a busy process's order placements starve a panic: newcomers win the free
pooled connection, and SQLite's busy handler, which polls, mostly hands its lock to the
newest waiter. Few guarded transactions of a process run at once (one on SQLite, where
BEGIN IMMEDIATE serialises them anyway and they would only poll against each other): under
one interpreter lock more buy no speed, and they would hold pooled connections the rest of
the process needs, the panic's other steps among them.
"""

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.engine import Database
from storage.models import ControlLockRow, JournalRow

_LOCK_TABLE = {
    mode: sa.text(f"LOCK TABLE {ControlLockRow.__tablename__} IN {mode} MODE")
    for mode in ("SHARE", "EXCLUSIVE")
}


@contextmanager
def guarded_transaction(database: Database, *, exclusive: bool) -> Iterator[Session]:
    """A guarded transaction holding the control guard from its start: shared to place or
    change orders, exclusive to change the control state. Commits when the block ends."""
    with (
        _turnstile(database.engine).turn(exclusive),
        database.guarded_session_factory.begin() as session,
    ):
        take_control_guard(session, exclusive=exclusive)
        yield session


def take_control_guard(session: Session, *, exclusive: bool) -> None:
    """Lock against concurrent control changes (shared) or everything guarded (exclusive).

    Must run first in a transaction from ``guarded_session_factory``.
    """
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: BEGIN IMMEDIATE already holds the database's write lock; make sure the
        # transaction has begun so it is held before anything is read.
        session.connection()
        return
    session.execute(_LOCK_TABLE["EXCLUSIVE" if exclusive else "SHARE"])


def next_journal_seq(session: Session, kind: Literal["control", "order"], at_ms: int) -> int:
    """The next number of the one sequence control changes and orders share."""
    row = JournalRow(kind=kind, at=at_ms)
    session.add(row)
    session.flush()
    return row.seq


class _Turnstile:
    """The in-process order of one database's guarded transactions (see the module notes).

    Exclusive turns go before every shared turn not yet started; shared turns start in the
    order they arrived, so a thread that just finished one cannot take the next at once.
    """

    def __init__(self, max_running: int) -> None:
        self._max_running = max_running
        self._changed = threading.Condition()
        self._running = 0
        self._exclusive_running = False
        self._exclusive_waiting = 0
        self._next_ticket = 0
        self._serving = 0

    @contextmanager
    def turn(self, exclusive: bool) -> Iterator[None]:
        with self._changed:
            if exclusive:
                self._exclusive_waiting += 1
                self._changed.wait_for(lambda: not self._running and not self._exclusive_running)
                self._exclusive_waiting -= 1
                self._exclusive_running = True
            else:
                ticket = self._next_ticket
                self._next_ticket += 1
                self._changed.wait_for(lambda: self._shared_may_start(ticket))
                self._serving += 1
            self._running += 1
            # The next ticket may start beside this one (PostgreSQL).
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._exclusive_running = False
                self._changed.notify_all()

    def _shared_may_start(self, ticket: int) -> bool:
        return (
            ticket == self._serving
            and self._running < self._max_running
            and not self._exclusive_running
            and not self._exclusive_waiting
        )


# Shared guarded transactions one process runs at once on PostgreSQL (see the module notes).
_POSTGRES_SHARED_TURNS = 4
_TURNSTILES: weakref.WeakKeyDictionary[sa.Engine, _Turnstile] = weakref.WeakKeyDictionary()
_TURNSTILES_LOCK = threading.Lock()


def _turnstile(engine: sa.Engine) -> _Turnstile:
    with _TURNSTILES_LOCK:
        found = _TURNSTILES.get(engine)
        if found is None:
            overlap = _POSTGRES_SHARED_TURNS if engine.dialect.name == "postgresql" else 1
            found = _TURNSTILES[engine] = _Turnstile(overlap)
        return found
