"""A backtest's control state, in memory: the triggers' pauses and the ends of their cool-downs.

The rules are the stored control state's (safety.control, storage.control): a symbol sees
the stricter of the global state and its own, newest first on a tie; a pause with a
cool-down lifts itself once the cool-down has ended, when ``safety.auto_resume`` is on.
Nothing is written to the database: a backtest must not pause live trading.
"""

from core.decision import ControlStateName
from core.settings import Settings
from safety.control import AUTO_RESUME_ACTOR, ended_cool_down, resume_reason
from storage.control import NEVER_CHANGED, STRICTNESS, ControlState


class BacktestControl:
    def __init__(self, settings: Settings) -> None:
        self._auto_resume = settings.safety.auto_resume
        self._scopes: dict[str | None, ControlState] = {}
        self.changes: list[ControlState] = []  # every change, oldest first

    def current(self, symbol: str | None = None) -> ControlState:
        """The global state; for a symbol, the stricter of the global state and its own."""
        scopes = [self._scopes.get(None), self._scopes.get(symbol) if symbol else None]
        held = [state for state in scopes if state is not None]
        if not held:
            return NEVER_CHANGED
        return max(held, key=lambda state: (STRICTNESS[state.state], state.journal_seq or 0))

    def pause(
        self,
        actor: str,
        reason: str,
        now_ms: int,
        symbol: str | None = None,
        cool_down_until: int | None = None,
    ) -> ControlState:
        """PAUSE a scope, as ControlService.pause does (a backtest never HALTs)."""
        own = self._scopes.get(symbol)
        if own is not None and own.state == "PAUSED" and own.cool_down_until is None:
            return own
        return self._record("PAUSED", reason, actor, now_ms, symbol, cool_down_until)

    def auto_resume_due(self, now_ms: int) -> list[ControlState]:
        """Resume every PAUSED scope whose cool-down has ended (ControlService.auto_resume_due)."""
        if not self._auto_resume:
            return []
        return [
            self._record("ACTIVE", resume_reason(ended), AUTO_RESUME_ACTOR, now_ms, state.symbol)
            # Global first, then the symbols in order: the order the database lists scopes in.
            for _, state in sorted(self._scopes.items(), key=lambda item: (item[0] or "",))
            if (ended := ended_cool_down(state, now_ms)) is not None
        ]

    def _record(
        self,
        state: ControlStateName,
        reason: str,
        actor: str,
        at_ms: int,
        symbol: str | None,
        cool_down_until: int | None = None,
    ) -> ControlState:
        changed = ControlState(
            state=state,
            reason=reason,
            actor=actor,
            since=at_ms,
            symbol=symbol,
            journal_seq=len(self.changes) + 1,
            cool_down_until=cool_down_until,
        )
        self._scopes[symbol] = changed
        self.changes.append(changed)
        return changed
