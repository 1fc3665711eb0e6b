"""The control guard and the journal sequence: why no order can follow a panic.

An order placement and a control change each run in one guarded transaction:

- PostgreSQL: the order takes a SHARE lock on the single ``control_lock`` row, a control
  change an exclusive (UPDATE) lock. A panic therefore waits for orders already past their
  check to commit, and orders arriving meanwhile wait for the panic, then read HALTED.
- SQLite: the transaction begins IMMEDIATE (``Database.guarded_session_factory``), taking
  the database's single write lock before it reads anything.

Inside the guard the transaction reads the control state and takes its journal number, so
every committed order has a lower number than any HALTED change it did not see.
"""

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import ControlLockRow, JournalRow

_LOCK_ROW = sa.select(ControlLockRow.id).where(ControlLockRow.id == 1)


def take_control_guard(session: Session, *, exclusive: bool) -> None:
    """Lock against concurrent control changes (shared) or everything guarded (exclusive).

    Must run first in a transaction from ``guarded_session_factory``.
    """
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: BEGIN IMMEDIATE already holds the database's write lock; make sure the
        # transaction has begun so it is held before anything is read.
        session.connection()
        return
    lock = _LOCK_ROW.with_for_update(read=not exclusive)
    if session.execute(lock).scalar_one_or_none() is None:
        raise RuntimeError("control_lock row missing: the database was not migrated")


def next_journal_seq(session: Session, kind: Literal["control", "order"], at_ms: int) -> int:
    """The next number of the one sequence control changes and orders share."""
    row = JournalRow(kind=kind, at=at_ms)
    session.add(row)
    session.flush()
    return row.seq
