"""The bear: the shared evidence rules read downward."""

from agents.rules import Side, arguments_for
from core.evidence import Argument
from core.snapshot import MarketSnapshot

BEAR = Side(
    speaker="bear",
    sign=-1.0,
    above="below",
    rising="falling",
    trend="downtrend",
    extreme="overbought",
    pressure="sellers",
)


def bear_arguments(snapshot: MarketSnapshot) -> tuple[Argument, ...]:
    """Every argument for a fall the snapshot supports, strongest first; () when none."""
    return arguments_for(snapshot, BEAR)
