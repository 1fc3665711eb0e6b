"""Evidence: named numbers with the window they were computed over, and arguments citing them."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Speaker = Literal["bull", "bear", "researcher", "judge"]
Stance = Literal["bull", "bear", "neutral"]


class Evidence(BaseModel):
    """One number an argument rests on, e.g. rsi_14 = 27.3 over 14 bars to 2023-01-20T12:00Z."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float
    window: str


class Argument(BaseModel):
    """A typed claim: which side, what kind of evidence, the numbers, how strong (0..1)."""

    model_config = ConfigDict(frozen=True)

    speaker: Speaker
    stance: Stance
    category: str
    claim: str
    evidence: tuple[Evidence, ...]
    strength: float = Field(ge=0.0, le=1.0)


class ContextItem(BaseModel):
    """A piece of context the researcher holds up against the claims (news, metric, regime)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    summary: str
    evidence: tuple[Evidence, ...] = ()


class ResearchBrief(BaseModel):
    """What the researcher found, and what it looked for and did not find (said, not hidden)."""

    model_config = ConfigDict(frozen=True)

    items: tuple[ContextItem, ...]
    missing: tuple[str, ...]
    confidence_factor: float = Field(ge=0.0, le=1.0)
