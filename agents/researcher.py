"""The researcher: the context around the market evidence, and checks of the sides' claims.

It brings the volatility and volume regimes, the stored news and research observations,
and says plainly what it looked for and did not find. It never invents context: no news
stored means "no news", not neutral news.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.rules import (
    CATEGORIES,
    VOL_RANK_HIGH,
    VOL_RANK_LOW,
    VOLUME_HEAVY_Z,
    VOLUME_THIN_Z,
    IntArray,
    Values,
    ramp,
    show,
)
from core.candles import FloatArray
from core.evidence import Argument, ContextItem, Evidence, ResearchBrief
from core.market_view import NewsItem, ResearchObservation
from core.snapshot import MarketSnapshot
from core.timeframes import format_timestamp

# At the very top of the volatility range the judge keeps this share of its confidence:
# the rules were calibrated on ordinary bars and say less when the market is wild. The
# factor falls linearly from 1 at the high-regime boundary to this floor at rank 1.
HIGH_VOL_CONFIDENCE_FLOOR = 0.5
# Extremes stretch further in high volatility: a mean-reversion claim loses up to half.
HIGH_VOL_REVERSION_DISCOUNT = 0.5
# A breakout without volume behind it often fails: it loses up to half on thin volume,
# growing from the thin boundary (z -1) to full at z -1.5 (about the 5th percentile).
THIN_VOLUME_BREAKOUT_DISCOUNT = 0.5
THIN_VOLUME_SPAN_Z = 0.5


@dataclass(frozen=True)
class ClaimCheck:
    """The researcher's doubt about one argument: its strength is multiplied by ``factor``."""

    position: int  # index of the argument in the sequence that was checked
    factor: float  # in [0, 1)
    claim: str
    evidence: tuple[Evidence, ...]


def research_brief(
    snapshot: MarketSnapshot,
    news: Sequence[NewsItem],
    research: Sequence[ResearchObservation],
) -> ResearchBrief:
    """Regimes from the snapshot, plus news and research as stored up to ``snapshot.as_of``.

    Raises ValueError for an item dated after ``as_of``: the view broke the time contract.
    """
    _refuse_look_ahead(snapshot.as_of, news, research)
    as_of = format_timestamp(snapshot.as_of)
    items = [_volatility_regime(snapshot), _volume_regime(snapshot)]
    missing: list[str] = []
    if news:
        items.append(_news_context(news, as_of))
    else:
        missing.append(f"news: no items stored up to {as_of}")
    if news and not _scored(news):
        missing.append(f"news sentiment: none of {len(news)} items has a score")
    if research:
        items.extend(_research_context(research))
    else:
        missing.append(f"research: no observations stored up to {as_of}")
    if "book_imbalance" not in snapshot.values:
        missing.append(f"order book: no recent summary up to {as_of}")
    return ResearchBrief(
        items=tuple(items),
        missing=tuple(missing),
        confidence_factor=float(confidence_factor(snapshot.value("atr_pct_rank"))),
    )


def _refuse_look_ahead(
    as_of: int, news: Sequence[NewsItem], research: Sequence[ResearchObservation]
) -> None:
    stamps = [item.published_at for item in news] + [item.fetched_at for item in research]
    if any(stamp > as_of for stamp in stamps):
        raise ValueError(f"news or research dated after as_of {format_timestamp(as_of)}")


def confidence_factor(rank: Any) -> Any:
    """How much of its confidence the judge keeps at an ATR% rank (a number or an array)."""
    span = 1.0 - VOL_RANK_HIGH
    return 1.0 - (1.0 - HIGH_VOL_CONFIDENCE_FLOOR) * ramp(rank, VOL_RANK_HIGH, span)


def _volatility_regime(snapshot: MarketSnapshot) -> ContextItem:
    rank = snapshot["atr_pct_rank"]
    if rank.value >= VOL_RANK_HIGH:
        regime = f"high (>= {VOL_RANK_HIGH:.2f}): moves overshoot, the verdict counts for less"
    elif rank.value <= VOL_RANK_LOW:
        regime = f"low (<= {VOL_RANK_LOW:.2f}): a squeeze, band breaks tend to run"
    else:
        regime = "normal"
    summary = f"volatility regime: ATR% rank {show(rank)} in the window, {regime}"
    return ContextItem(kind="volatility_regime", summary=summary, evidence=(rank,))


def _volume_regime(snapshot: MarketSnapshot) -> ContextItem:
    volume_z = snapshot["volume_z_20"]
    if volume_z.value >= VOLUME_HEAVY_Z:
        regime = f"heavy (>= {VOLUME_HEAVY_Z:.2f})"
    elif volume_z.value <= VOLUME_THIN_Z:
        regime = f"thin (<= {VOLUME_THIN_Z:.2f})"
    else:
        regime = "normal"
    summary = f"volume regime: last bar volume z {show(volume_z)}, {regime}"
    return ContextItem(kind="volume_regime", summary=summary, evidence=(volume_z,))


def _scored(news: Sequence[NewsItem]) -> list[float]:
    return [item.sentiment for item in news if item.sentiment is not None]


def _news_context(news: Sequence[NewsItem], as_of: str) -> ContextItem:
    window = f"news published up to {as_of}"
    count = Evidence(name="news_count", value=float(len(news)), window=window)
    scores = _scored(news)
    if not scores:
        summary = f"news: {len(news)} items up to {as_of}, none with a sentiment score"
        return ContextItem(kind="news", summary=summary, evidence=(count,))
    # fsum is exactly rounded, so the mean does not depend on the order the view returned.
    mean = Evidence(
        name="news_sentiment_mean", value=math.fsum(scores) / len(scores), window=window
    )
    summary = (
        f"news: {len(news)} items up to {as_of}, {len(scores)} with a sentiment score, "
        f"mean sentiment {mean.value:+.2f}"
    )
    return ContextItem(kind="news", summary=summary, evidence=(count, mean))


def _research_context(research: Sequence[ResearchObservation]) -> list[ContextItem]:
    """The latest observation of each (metric, source), in metric then source order."""
    latest: dict[tuple[str, str], ResearchObservation] = {}
    for item in research:
        key = (item.metric, item.source)
        if key not in latest or item.fetched_at > latest[key].fetched_at:
            latest[key] = item
    return [_observation_context(latest[key]) for key in sorted(latest)]


def _observation_context(item: ResearchObservation) -> ContextItem:
    fetched = format_timestamp(item.fetched_at)
    evidence = Evidence(name=item.metric, value=item.value, window=f"{item.source} at {fetched}")
    summary = f"research: {item.metric} {item.value:g} from {item.source}, fetched {fetched}"
    return ContextItem(kind="research", summary=summary, evidence=(evidence,))


@dataclass(frozen=True)
class _Doubt:
    """Claims of ``category`` count for less the further ``evidence_name`` is past ``boundary``.

    ``sign`` +1 means "past" is above the boundary, -1 below it. The discount grows linearly
    from 0 at the boundary to ``max_discount`` at ``span`` beyond it.
    """

    category: str
    evidence_name: str
    label: str
    sign: float
    boundary: float
    span: float
    max_discount: float
    reason: str

    def factor(self, value: Any) -> Any:
        """The factor at ``value`` (a number or an array of them)."""
        past = ramp(self.sign * value, self.sign * self.boundary, self.span)
        return 1.0 - self.max_discount * past


_DOUBTS = (
    _Doubt(
        category="mean_reversion",
        evidence_name="atr_pct_rank",
        label="ATR% rank",
        sign=1.0,
        boundary=VOL_RANK_HIGH,
        span=1.0 - VOL_RANK_HIGH,
        max_discount=HIGH_VOL_REVERSION_DISCOUNT,
        reason="high volatility, extremes stretch further before they revert",
    ),
    _Doubt(
        category="volatility",
        evidence_name="volume_z_20",
        label="volume z",
        sign=-1.0,
        boundary=VOLUME_THIN_Z,
        span=THIN_VOLUME_SPAN_Z,
        max_discount=THIN_VOLUME_BREAKOUT_DISCOUNT,
        reason="thin volume, a breakout without volume behind it often fails",
    ),
)


def check_claims(brief: ResearchBrief, arguments: Sequence[Argument]) -> tuple[ClaimCheck, ...]:
    """The researcher's doubts about ``arguments``, judged against the regime evidence in
    ``brief``; in argument order, at most one per argument and doubt, none that change nothing.
    """
    cited = {evidence.name: evidence for item in brief.items for evidence in item.evidence}
    checks = []
    for position, argument in enumerate(arguments):
        for doubt in _DOUBTS:
            evidence = cited.get(doubt.evidence_name)
            if argument.category != doubt.category or evidence is None:
                continue
            factor = float(doubt.factor(evidence.value))
            if factor < 1.0:
                checks.append(_claim_check(position, argument, doubt, evidence, factor))
    return tuple(checks)


def _claim_check(
    position: int, argument: Argument, doubt: _Doubt, evidence: Evidence, factor: float
) -> ClaimCheck:
    relation = ">=" if doubt.sign > 0 else "<="
    claim = (
        f"{doubt.reason} ({doubt.label} {show(evidence)}, {relation} {doubt.boundary:.2f}): "
        f"the {argument.speaker}'s {argument.category} claim counts x{factor:.2f}"
    )
    return ClaimCheck(position=position, factor=factor, claim=claim, evidence=(evidence,))


def doubt_factors(values: Values, category: IntArray) -> FloatArray:
    """The factor check_claims gives each argument of rows of bars (``category``: codes into
    agents.rules.CATEGORIES, one row per bar), read from the bar's own regime values: the
    values the rules' brief cites whenever no research observation shadows them (a candle
    file carries none). 1.0 where nothing is doubted."""
    factor = np.ones(category.shape)
    for doubt in _DOUBTS:
        doubted = category == CATEGORIES.index(doubt.category)
        regime = doubt.factor(values[doubt.evidence_name][:, np.newaxis])
        factor = np.where(doubted, regime, factor)
    return factor
