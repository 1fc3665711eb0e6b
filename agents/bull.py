"""The bull: the shared evidence rules read upward."""

from agents.rules import Side, arguments_for
from core.evidence import Argument
from core.snapshot import MarketSnapshot

BULL = Side(
    speaker="bull",
    sign=1.0,
    above="above",
    rising="rising",
    trend="uptrend",
    extreme="oversold",
    pressure="buyers",
)


def bull_arguments(snapshot: MarketSnapshot) -> tuple[Argument, ...]:
    """Every argument for a rise the snapshot supports, strongest first; () when none."""
    return arguments_for(snapshot, BULL)
