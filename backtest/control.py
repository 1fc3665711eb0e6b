"""A backtest's control state, in memory: the triggers' pauses and the ends of their cool-downs.

The rules are the stored control state's (safety.control, storage.control): a symbol sees
the stricter of the global state and its own, newest first on a tie; a pause with a
cool-down lifts itself once the cool-down has ended, when ``safety.auto_resume`` is on.
Nothing is written to the database: a backtest must not pause live trading.
"""

from core.decision import ControlStateName
from core.settings import Settings
from safety.control import AUTO_RESUME_ACTOR, cool_downs_ended, resume_reason, standing_pause
from storage.control import NEVER_CHANGED, ControlState, precedence


class BacktestControl:
    def __init__(self, settings: Settings) -> None:
        self._auto_resume = settings.safety.auto_resume
        self._scopes: dict[str | None, ControlState] = {}
        self.changes: list[ControlState] = []  # every change, oldest first
        # What current() said for each scope since the last change (read every bar).
        self._seen: dict[str | None, ControlState] = {}

    def current(self, symbol: str | None = None) -> ControlState:
        """The global state; for a symbol, the stricter of the global state and its own."""
        seen = self._seen.get(symbol)
        if seen is not None:
            return seen
        scopes = [self._scopes.get(None), self._scopes.get(symbol) if symbol else None]
        held = [state for state in scopes if state is not None]
        current = (
            max(held, key=lambda state: precedence(state.state, state.journal_seq))
            if held
            else NEVER_CHANGED
        )
        self._seen[symbol] = current
        return current

    def pause(
        self,
        actor: str,
        reason: str,
        now_ms: int,
        symbol: str | None = None,
        cool_down_until: int | None = None,
    ) -> ControlState:
        """PAUSE a scope, as ControlService.pause does."""
        own = self._scopes.get(symbol, NEVER_CHANGED)
        standing = standing_pause(own, symbol)
        if standing is not None:
            return standing
        return self._record("PAUSED", reason, actor, now_ms, symbol, cool_down_until)

    def auto_resume_due(self, now_ms: int) -> list[ControlState]:
        """Resume every PAUSED scope whose cool-down has ended (ControlService.auto_resume_due)."""
        if not self._auto_resume:
            return []
        # Global first, then the symbols in order: the order the database lists scopes in.
        scopes = [state for _, state in sorted(self._scopes.items(), key=lambda i: i[0] or "")]
        return [
            self._record("ACTIVE", resume_reason(ended), AUTO_RESUME_ACTOR, now_ms, state.symbol)
            for state, ended in cool_downs_ended(scopes, now_ms)
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
        self._seen = {}
        return changed
