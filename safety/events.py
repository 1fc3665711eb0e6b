"""The safety events a gate verdict raises: every block or reduction is recorded."""

from core.decision import Proposal, SafetyReport
from storage.safety_events import SafetyEventDraft


def gate_events(
    symbol: str, proposal: Proposal, report: SafetyReport, at_ms: int
) -> tuple[SafetyEventDraft, ...]:
    """One event per decision the gate did not let through as proposed, saying why."""
    if report.verdict == "approved":
        return ()
    detail = {
        "verdict": report.verdict,
        "control_state": report.control_state,
        "proposed": {"action": proposal.action, "size": proposal.size},
        "allowed": {"action": report.action, "size": report.size},
        "failed_checks": [check.model_dump() for check in report.checks if not check.passed],
    }
    return (SafetyEventDraft(f"gate_{report.verdict}", symbol, detail, at_ms),)
