"""Pause, resume, panic and auto-resume (DESIGN §6): the control state's transitions.

Each transition is recorded under the exclusive control guard (storage.journal) together
with its safety event, in one transaction: there is never a change without its event.

A panic persists HALTED first. Once that commits, every order placement, which reads the
state under the shared guard, refuses, from any thread or process, until a resume. Only then
are the open orders cancelled and, if asked, the positions closed with reduce-only sells (the
only orders HALTED lets out). A failing step is reported and does not stop the next.

Scopes: global (``symbol`` None) or one symbol. A symbol trades under the stricter of the
global state and its own; a resume lifts exactly the scope it names.
"""

import time
import uuid
from collections.abc import Iterable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from core.decision import ControlStateName
from core.settings import Settings, validate_symbol
from core.timeframes import format_timestamp
from core.trading import HoldingView, OrderOutcome, OrderRequest, OrderView, PortfolioView
from storage.control import NEVER_CHANGED, ControlState, current_in, record_in, scopes_in
from storage.engine import Database
from storage.journal import guarded_transaction
from storage.safety_events import SafetyEventDraft, event_row

AUTO_RESUME_ACTOR = "auto-resume"
EVENT_KINDS: dict[ControlStateName, str] = {
    "ACTIVE": "control_resumed",
    "PAUSED": "control_paused",
    "HALTED": "control_halted",
}
PANIC_EVENT_KIND = "panic_steps"
# The control_state_changes.actor column's width.
_MAX_ACTOR = 64


class ControlledBroker(Protocol):
    """What the control service needs of a broker: cancel everything, send the panic's
    close-outs, show the book. Structural, so safety needs nothing from execution."""

    name: str

    def submit(self, request: OrderRequest, now_ms: int) -> OrderOutcome: ...

    def cancel_all(self, reason: str, now_ms: int) -> list[OrderView]: ...

    def open_orders(self) -> list[OrderView]: ...

    def portfolio(self, now_ms: int) -> PortfolioView: ...


class ControlError(Exception):
    """A transition refused as things stand (a cool-down running, a pause under HALTED)."""


class CoolDownError(ControlError):
    def __init__(self, state: ControlState, until: int) -> None:
        super().__init__(
            f"{_scope(state.symbol)} is PAUSED ({state.reason}) in a cool-down until "
            f"{format_timestamp(until)}: wait until then, or force the resume"
        )
        self.until = until


PanicStepName = Literal["halt", "cancel_orders", "close_positions", "record"]


class PanicStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: PanicStepName
    ok: bool
    elapsed_ms: float  # from the panic call to the end of this step
    detail: str
    error: str | None = None


class PanicReport(BaseModel):
    """Every step of one panic, in the order they ran. ``halted_journal_seq`` is that of the
    HALTED in force: this panic's, or, when ``already_halted``, the earlier one's."""

    model_config = ConfigDict(frozen=True)

    already_halted: bool
    halted_journal_seq: int | None
    cancelled_order_ids: tuple[str, ...]
    close_out_order_ids: tuple[str, ...]
    steps: tuple[PanicStep, ...]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def errors(self) -> dict[str, str]:
        return {step.name: step.error for step in self.steps if step.error is not None}


class ControlStatus(BaseModel):
    """What ``sigmax status`` shows: the global state, symbols held back on their own, the
    open orders and positions, and each currency's profit since 00:00 UTC."""

    model_config = ConfigDict(frozen=True)

    control: ControlState
    symbols_not_active: tuple[ControlState, ...]
    open_orders: int
    holdings: tuple[HoldingView, ...]
    today_pnl: dict[str, float]


class ControlService:
    def __init__(self, database: Database, broker: ControlledBroker, settings: Settings) -> None:
        self._database = database
        self._broker = broker
        self._settings = settings

    def pause(
        self,
        actor: str,
        reason: str,
        now_ms: int,
        symbol: str | None = None,
        cool_down_until: int | None = None,
    ) -> ControlState:
        """PAUSE a scope: exits only. ``cool_down_until`` lets it auto-resume after (when the
        settings allow) and holds off a manual resume until then unless forced."""
        _require(actor, reason)
        with guarded_transaction(self._database, exclusive=True) as session:
            own = _own(session, symbol)
            standing = standing_pause(own, symbol)
            if standing is not None:
                return standing
            return _record(session, "PAUSED", reason, actor, now_ms, symbol, cool_down_until)

    def resume(
        self,
        actor: str,
        reason: str,
        now_ms: int,
        force: bool = False,
        symbol: str | None = None,
    ) -> ControlState:
        """Make a scope ACTIVE. Refused with CoolDownError during a cool-down unless ``force``.

        A scope already ACTIVE is left as it is and its state returned: nothing is recorded.
        """
        _require(actor, reason)
        with guarded_transaction(self._database, exclusive=True) as session:
            own = _own(session, symbol)
            if own.state == "ACTIVE":
                return own
            until = _cooling_until(own, now_ms)
            if until is not None and not force:
                raise CoolDownError(own, until)
            forced = until is not None
            return _record(
                session, "ACTIVE", reason, actor, now_ms, symbol, forced=forced, lifted=own.state
            )

    def panic(
        self, actor: str, reason: str, now_ms: int, close_positions: bool = False
    ) -> PanicReport:
        """HALTED first, then cancel open orders, then (if asked) close positions reduce-only.

        Idempotent: under HALTED nothing new is recorded (``already_halted``), and the steps
        after it run again. Every step runs even when one before it failed.
        """
        _require(actor, reason)
        started = time.perf_counter()
        steps: list[PanicStep] = []
        already_halted, halted_seq = False, None
        try:
            already_halted, halted_seq = self._halt(actor, reason, now_ms)
            said = "already HALTED" if already_halted else "HALTED persisted"
            steps.append(_step("halt", started, f"{said}: journal #{halted_seq}"))
        except Exception as error:  # reported, and the cancellations still run
            steps.append(_failed("halt", started, error))
        cancelled: tuple[str, ...] = ()
        try:
            cancelled = tuple(
                order.id for order in self._broker.cancel_all(f"panic: {reason}", now_ms)
            )
            steps.append(_step("cancel_orders", started, f"{len(cancelled)} open orders cancelled"))
        except Exception as error:  # reported, and the close-outs still run
            steps.append(_failed("cancel_orders", started, error))
        closing: tuple[str, ...] = ()
        if close_positions:
            closing, step = self._close_positions(reason, now_ms, started)
            steps.append(step)
        report = PanicReport(
            already_halted=already_halted,
            halted_journal_seq=halted_seq,
            cancelled_order_ids=cancelled,
            close_out_order_ids=closing,
            steps=tuple(steps),
        )
        return self._record_report(report, actor, reason, now_ms, started)

    def auto_resume_due(self, now_ms: int) -> list[ControlState]:
        """Resume every PAUSED scope whose cool-down has ended, when ``safety.auto_resume`` is
        on; returns the changes recorded. HALTED, and a pause without a cool-down, stay."""
        if not self._settings.safety.auto_resume:
            return []
        with self._database.session_factory() as session:
            if not cool_downs_ended(scopes_in(session), now_ms):
                return []
        with guarded_transaction(self._database, exclusive=True) as session:
            return [
                _record(
                    session,
                    "ACTIVE",
                    resume_reason(ended),
                    AUTO_RESUME_ACTOR,
                    now_ms,
                    state.symbol,
                    lifted=state.state,
                )
                for state, ended in cool_downs_ended(scopes_in(session), now_ms)
            ]

    def status(self, now_ms: int) -> ControlStatus:
        with self._database.session_factory() as session:
            control = current_in(session)
            held_back = tuple(
                state
                for state in scopes_in(session)
                if state.symbol is not None and state.state != "ACTIVE"
            )
        portfolio = self._broker.portfolio(now_ms)
        return ControlStatus(
            control=control,
            symbols_not_active=held_back,
            open_orders=len(self._broker.open_orders()),
            holdings=tuple(portfolio.holdings.values()),
            today_pnl={quote: view.today_pnl for quote, view in portfolio.currencies.items()},
        )

    # --- the panic's steps ----------------------------------------------------------------------

    def _halt(self, actor: str, reason: str, now_ms: int) -> tuple[bool, int | None]:
        """(already halted, journal number of the HALTED in force)."""
        with guarded_transaction(self._database, exclusive=True) as session:
            own = _own(session, None)
            if own.state == "HALTED":
                return True, own.journal_seq
            return False, _record(session, "HALTED", reason, actor, now_ms, None).journal_seq

    def _close_positions(
        self, reason: str, now_ms: int, started: float
    ) -> tuple[tuple[str, ...], PanicStep]:
        """Sell every position reduce-only at its mark; each position is tried."""
        try:
            holdings = self._broker.portfolio(now_ms).holdings.values()
        except Exception as error:  # reported; the report still gets recorded
            return (), _failed("close_positions", started, error)
        submitted: list[str] = []
        problems: list[str] = []
        for holding in holdings:
            request = OrderRequest(
                client_order_id=f"panic-{uuid.uuid4().hex}",
                symbol=holding.symbol,
                timeframe=holding.timeframe,
                side="sell",
                size_fraction=1.0,
                reference_price=holding.mark_price,
                not_before=now_ms,
                reduce_only=True,
            )
            try:
                outcome = self._broker.submit(request, now_ms)
            except Exception as error:  # the other positions are still closed
                problems.append(f"{holding.symbol}: {type(error).__name__}: {error}")
                continue
            if outcome.status == "accepted" and outcome.order_id is not None:
                submitted.append(outcome.order_id)
            else:
                problems.append(f"{holding.symbol}: {outcome.status}: {outcome.reason}")
        detail = f"{len(submitted)} reduce-only close-outs submitted ({reason})"
        step = _step("close_positions", started, detail, "; ".join(problems) or None)
        return tuple(submitted), step

    def _record_report(
        self, report: PanicReport, actor: str, reason: str, now_ms: int, started: float
    ) -> PanicReport:
        """Store the report as a safety event; the report says whether that worked.

        In an exclusive guarded transaction, for its place in the queue: the process's order
        placements, refused by now anyway, must not keep it waiting for a connection.
        """
        detail = {"actor": actor, "reason": reason} | report.model_dump(mode="json")
        row = event_row(SafetyEventDraft(PANIC_EVENT_KIND, None, detail, now_ms))
        try:
            with guarded_transaction(self._database, exclusive=True) as session:
                session.add(row)
        except Exception as error:  # the caller still gets the report of what was done
            step = _failed("record", started, error)
        else:
            step = _step("record", started, f"safety event #{row.id}")
        return report.model_copy(update={"steps": (*report.steps, step)})


def _record(
    session: Session,
    state: ControlStateName,
    reason: str,
    actor: str,
    now_ms: int,
    symbol: str | None,
    cool_down_until: int | None = None,
    **detail: object,
) -> ControlState:
    """Append the change and its safety event, in the caller's guarded transaction."""
    changed = record_in(session, state, reason, actor, now_ms, symbol, cool_down_until)
    event = {
        "reason": reason,
        "actor": actor,
        "journal_seq": changed.journal_seq,
        "cool_down_until": cool_down_until,
    }
    session.add(event_row(SafetyEventDraft(EVENT_KINDS[state], symbol, event | detail, now_ms)))
    return changed


def _own(session: Session, symbol: str | None) -> ControlState:
    """The newest change of exactly this scope, not combined with any other."""
    if symbol is not None:
        validate_symbol(symbol)
    for state in scopes_in(session):
        if state.symbol == symbol:
            return state
    return NEVER_CHANGED.model_copy(update={"symbol": symbol})


def _cooling_until(state: ControlState, now_ms: int) -> int | None:
    """When a running cool-down ends; None when there is none running."""
    until = state.cool_down_until
    return until if state.state == "PAUSED" and until is not None and now_ms < until else None


def standing_pause(own: ControlState, symbol: str | None) -> ControlState | None:
    """What a pause of a scope whose own state is ``own`` leaves standing instead of recording
    a new one: a person's pause (one without a cool-down). None: record the pause. Raises
    ControlError under HALTED, which a pause would lift."""
    if own.state == "HALTED":
        raise ControlError(
            f"{_scope(symbol)} is HALTED ({own.reason}): a pause would lift it; resume first"
        )
    if own.state == "PAUSED" and own.cool_down_until is None:
        # A person's pause holds until a person lifts it: a trigger's pause with a
        # cool-down recorded over it would let auto-resume lift it.
        return own
    return None


def cool_downs_ended(scopes: Iterable[ControlState], now_ms: int) -> list[tuple[ControlState, int]]:
    """The scopes (each its own newest change, in the order given) an auto-resume lifts at
    ``now_ms``, each with when its cool-down ended. HALTED, and a pause without a cool-down,
    stay."""
    return [
        (state, ended) for state in scopes if (ended := ended_cool_down(state, now_ms)) is not None
    ]


def resume_reason(ended: int) -> str:
    """Why an auto-resume lifted a pause."""
    return f"cool-down ended at {format_timestamp(ended)}"


def ended_cool_down(state: ControlState, now_ms: int) -> int | None:
    """When a PAUSED scope's cool-down ended, if it has; None otherwise."""
    until = state.cool_down_until
    return until if state.state == "PAUSED" and until is not None and until <= now_ms else None


def _require(actor: str, reason: str) -> None:
    for name, value in (("actor", actor), ("reason", reason)):
        if not value.strip():
            raise ValueError(f"{name} must not be empty")
    if len(actor) > _MAX_ACTOR:
        raise ValueError(f"actor must be at most {_MAX_ACTOR} characters")


def _scope(symbol: str | None) -> str:
    return "trading" if symbol is None else symbol


def _step(name: PanicStepName, started: float, detail: str, error: str | None = None) -> PanicStep:
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return PanicStep(name=name, ok=error is None, elapsed_ms=elapsed_ms, detail=detail, error=error)


def _failed(name: PanicStepName, started: float, error: Exception) -> PanicStep:
    return _step(name, started, "failed", f"{type(error).__name__}: {error}")
