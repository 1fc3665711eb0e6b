"""The model-backed bull, bear, researcher and judge: the schemas a chat model answers in,
and their conversion into the rule agents' own types.

A model cites evidence by name only; the values are looked up in the data it was shown, so
every number in an argument is one the market view produced. A name not in the data makes
the answer malformed (tried again, then the rules speak). The bounds of the schema — a
strength in [0, 1], a score in [-1, 1], a confidence and a confidence factor in [0, 1],
capped text — hold whatever the prompt contained.
"""

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.chat_backend import ChatBackend, ModelAnswer, TokenLedger
from agents.prompts import judge_prompt, research_prompt, side_prompt
from agents.rules import Category, Side, strongest_first
from core.decision import DebateTurn, DebateVerdict
from core.evidence import Argument, ContextItem, Evidence, ResearchBrief
from core.market_view import NewsItem, ResearchObservation
from core.settings import LLMSettings
from core.snapshot import MarketSnapshot

CLAIM_CHARS = 400
MAX_CITED = 8

ContextKind = Literal["volatility_regime", "volume_regime", "news", "research", "order_book"]


class _Draft(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArgumentDraft(_Draft):
    """One argument: its category, the claim with its numbers, the names of the evidence it
    rests on (as given in the data), and its strength from 0 to 1."""

    category: Category
    claim: str = Field(min_length=1, max_length=CLAIM_CHARS)
    evidence: list[str] = Field(min_length=1, max_length=MAX_CITED)
    strength: float = Field(ge=0.0, le=1.0)


class SideArguments(_Draft):
    """The side's arguments, at most one per category; an empty list when the evidence
    supports none."""

    arguments: list[ArgumentDraft] = Field(max_length=len(get_args(Category)))

    @field_validator("arguments")
    @classmethod
    def _one_per_category(cls, arguments: list[ArgumentDraft]) -> list[ArgumentDraft]:
        # The judge sums strengths: the same case made eight times must not weigh eight times.
        categories = [argument.category for argument in arguments]
        repeated = sorted({name for name in categories if categories.count(name) > 1})
        if repeated:
            raise ValueError(f"more than one argument in {', '.join(repeated)}")
        return arguments


class ContextDraft(_Draft):
    """One piece of context: its kind, a short summary, the names of the evidence it cites."""

    kind: ContextKind
    summary: str = Field(min_length=1, max_length=CLAIM_CHARS)
    evidence: list[str] = Field(default_factory=list, max_length=MAX_CITED)


class ResearchContext(_Draft):
    """The context the debate is judged against, and how far its verdict can be trusted."""

    items: list[ContextDraft] = Field(max_length=12)
    confidence_factor: float = Field(ge=0.0, le=1.0)


class JudgeRuling(_Draft):
    """The ruling: score from -1 (fall) to 1 (rise), confidence from 0 to 1, and why."""

    score: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(min_length=1, max_length=CLAIM_CHARS)


def _cited(names: Sequence[str], pool: Mapping[str, Evidence]) -> tuple[Evidence, ...]:
    unknown = sorted({name for name in names if name not in pool})
    if unknown:
        raise ValueError(f"cites evidence not in the data: {', '.join(unknown)[:200]}")
    return tuple(pool[name] for name in dict.fromkeys(names))


def model_arguments(
    backend: ChatBackend, side: Side, snapshot: MarketSnapshot, ledger: TokenLedger
) -> ModelAnswer[tuple[Argument, ...]]:
    """The side's arguments from its model, strongest first like the rules'."""

    def convert(draft: SideArguments) -> tuple[Argument, ...]:
        return strongest_first(
            [
                Argument(
                    speaker=side.speaker,
                    stance=side.speaker,
                    category=item.category,
                    claim=item.claim,
                    evidence=_cited(item.evidence, snapshot.values),
                    strength=item.strength,
                )
                for item in draft.arguments
            ]
        )

    prompt = side_prompt(side, snapshot, SideArguments.__name__)
    return backend.ask(prompt, SideArguments, convert, ledger)


def model_brief(
    backend: ChatBackend,
    snapshot: MarketSnapshot,
    rules_brief: ResearchBrief,
    news: Sequence[NewsItem],
    research: Sequence[ResearchObservation],
    ledger: TokenLedger,
) -> ModelAnswer[ResearchBrief]:
    """The researcher's brief from its model. What was looked for and not found stays the
    rule researcher's list: absence is a fact, not an opinion."""
    pool = {
        **snapshot.values,
        **{evidence.name: evidence for item in rules_brief.items for evidence in item.evidence},
    }

    def convert(draft: ResearchContext) -> ResearchBrief:
        items = tuple(
            ContextItem(kind=item.kind, summary=item.summary, evidence=_cited(item.evidence, pool))
            for item in draft.items
        )
        return ResearchBrief(
            items=items, missing=rules_brief.missing, confidence_factor=draft.confidence_factor
        )

    settings: LLMSettings = backend.settings
    limits = (settings.news_items, settings.news_title_chars)
    prompt = research_prompt(
        snapshot, rules_brief, news, research, limits, ResearchContext.__name__
    )
    return backend.ask(prompt, ResearchContext, convert, ledger)


def model_ruling(
    backend: ChatBackend,
    turns: Sequence[DebateTurn],
    verdict: DebateVerdict,
    ledger: TokenLedger,
) -> ModelAnswer[JudgeRuling]:
    """The judge model's ruling on the transcript as the debate left it."""
    prompt = judge_prompt(turns, verdict, JudgeRuling.__name__)
    return backend.ask(prompt, JudgeRuling, lambda ruling: ruling, ledger)
