"""The debate (DESIGN §5) as pure functions: arguments and context in, transcript and verdict out.

Round 0: the bull's opening arguments, the bear's, the researcher's context and its checks
of the claims against that context. Rounds 1..n: each side answers the opponent's strongest
argument not yet answered, using its own strongest argument of another category. After each
round the judge rescores; the debate stops once the score moves less than
``early_stop_delta``. A last "verdict" turn by the judge states the outcome.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agents.chat_backend import ModelAnswer
from agents.model_agents import JudgeRuling
from agents.researcher import check_claims
from core.decision import DebateTurn, DebateVerdict, ModelCall
from core.evidence import Argument, Evidence, ResearchBrief, Speaker
from core.settings import MAX_DEBATE_ROUNDS, DebateSettings

# The judge's score is (B - S) / (B + S + JUDGE_DAMPING). The damping keeps thin evidence
# from sounding certain: one full-strength argument alone scores 0.5, one of 0.3 scores 0.23
# (below the balanced profile's minimum confidence), two agreeing of 0.5 score 0.5.
JUDGE_DAMPING = 1.0

TurnKind = Literal["argument", "rebuttal", "context", "verdict", "fallback"]
_SIDES: tuple[tuple[Speaker, Speaker], ...] = (("bull", "bear"), ("bear", "bull"))


@dataclass(frozen=True)
class DebateOutcome:
    turns: tuple[DebateTurn, ...]
    verdict: DebateVerdict


@dataclass
class _Standing:
    """An argument in play: the turn it was made in and its effective strength now."""

    argument: Argument
    turn: int
    strength: float
    rebutted: bool = False


@dataclass(frozen=True)
class _Rebuttal:
    rebutter: _Standing
    target: _Standing
    strength: float  # the rebutter's effective strength when the round began


class _Transcript:
    def __init__(self) -> None:
        self.turns: list[DebateTurn] = []

    def add(
        self,
        round_: int,
        speaker: Speaker,
        kind: TurnKind,
        claim: str,
        evidence: tuple[Evidence, ...] = (),
        strength: float = 0.0,
        target: int | None = None,
        model: ModelCall | None = None,
    ) -> int:
        index = len(self.turns)
        turn = DebateTurn(
            index=index,
            round=round_,
            speaker=speaker,
            kind=kind,
            claim=claim,
            evidence=evidence,
            strength=strength,
            target=target,
            model=model,
        )
        self.turns.append(turn)
        return index


def judge_score(bull_strength: float, bear_strength: float) -> float:
    """Net strength over total, damped: in (-1, 1) for non-negative strengths, 0 for none."""
    return (bull_strength - bear_strength) / (bull_strength + bear_strength + JUDGE_DAMPING)


def run_debate(
    bull: Sequence[Argument],
    bear: Sequence[Argument],
    brief: ResearchBrief,
    settings: DebateSettings,
    calls: Mapping[Speaker, ModelCall] | None = None,
) -> DebateOutcome:
    """Debate ``bull`` against ``bear`` in the light of ``brief``; deterministic, no I/O.

    ``calls``: the chat-model call behind a model-backed agent's arguments or brief; its
    opening turns carry it, or a "fallback" turn says why the rules spoke instead.
    """
    transcript = _Transcript()
    calls = calls or {}
    standings = _open(transcript, "bull", bull, calls.get("bull"))
    standings += _open(transcript, "bear", bear, calls.get("bear"))
    _add_context(transcript, brief, calls.get("researcher"))
    _apply_checks(transcript, standings, brief)
    rounds_run, stopped_early = _rebuttal_rounds(transcript, standings, settings)
    verdict = _verdict(standings, brief, rounds_run, stopped_early)
    claim = _verdict_claim(verdict, brief, settings, bool(standings))
    transcript.add(rounds_run, "judge", "verdict", claim, strength=verdict.confidence)
    return DebateOutcome(turns=tuple(transcript.turns), verdict=verdict)


def _announce(
    transcript: _Transcript, round_: int, speaker: Speaker, call: ModelCall | None
) -> ModelCall | None:
    """The call to stamp on the speaker's turns; a fallback turn instead when it was not used."""
    if call is None or not call.fallback:
        return call
    claim = f"{call.backend} not used: {call.reason}; the rule {speaker} speaks instead"
    transcript.add(round_, speaker, "fallback", claim, model=call)
    return None


def _open(
    transcript: _Transcript,
    side: Speaker,
    arguments: Sequence[Argument],
    call: ModelCall | None,
) -> list[_Standing]:
    model = _announce(transcript, 0, side, call)
    if not arguments:
        claim = f"the {side} makes no argument: no evidence for it"
        transcript.add(0, side, "argument", claim, model=model)
    standings = []
    for argument in arguments:
        if argument.speaker != side:
            raise ValueError(f"a {argument.speaker} argument was handed in as the {side}'s")
        claim = f"[{argument.category}] {argument.claim}"
        index = transcript.add(
            0, side, "argument", claim, argument.evidence, argument.strength, model=model
        )
        standings.append(_Standing(argument, index, argument.strength))
    return standings


def _add_context(transcript: _Transcript, brief: ResearchBrief, call: ModelCall | None) -> None:
    model = _announce(transcript, 0, "researcher", call)
    if model is not None and not brief.items:
        # The model's confidence factor still weighs on the verdict: its call must show.
        claim = (
            f"{model.backend} brings no context; its confidence factor "
            f"{brief.confidence_factor:.2f} weighs on the verdict"
        )
        transcript.add(0, "researcher", "context", claim, model=model)
    for item in brief.items:
        transcript.add(0, "researcher", "context", item.summary, item.evidence, model=model)
    for absent in brief.missing:
        transcript.add(0, "researcher", "context", absent)


def _apply_checks(
    transcript: _Transcript, standings: list[_Standing], brief: ResearchBrief
) -> None:
    for check in check_claims(brief, [standing.argument for standing in standings]):
        standing = standings[check.position]
        before = standing.strength
        standing.strength = before * check.factor
        claim = f"{check.claim} (turn {standing.turn}: {before:.2f} -> {standing.strength:.2f})"
        strength = 1.0 - check.factor
        transcript.add(0, "researcher", "rebuttal", claim, check.evidence, strength, standing.turn)


def _rebuttal_rounds(
    transcript: _Transcript, standings: list[_Standing], settings: DebateSettings
) -> tuple[int, bool]:
    """Run up to ``settings.rounds`` rounds; return (rounds run, whether it stopped early)."""
    # Validation already caps rounds; the min keeps the hard limit even for unvalidated settings.
    limit = min(settings.rounds, MAX_DEBATE_ROUNDS)
    score = judge_score(*_totals(standings))
    for round_ in range(1, limit + 1):
        for rebuttal in _plan_round(standings):
            _rebut(transcript, round_, rebuttal, settings.rebuttal_weight)
        previous, score = score, judge_score(*_totals(standings))
        if abs(score - previous) < settings.early_stop_delta:
            return round_, round_ < limit
    return limit, False


def _plan_round(standings: list[_Standing]) -> list[_Rebuttal]:
    """Both sides' rebuttals, chosen from the standings as the round began: no first-mover edge."""
    plans = []
    for side, opponent in _SIDES:
        targets = [s for s in standings if s.argument.speaker == opponent and not s.rebutted]
        target = _strongest(targets)
        if target is None:
            continue
        own = [
            s
            for s in standings
            if s.argument.speaker == side and s.argument.category != target.argument.category
        ]
        rebutter = _strongest(own)
        if rebutter is not None:
            plans.append(_Rebuttal(rebutter, target, rebutter.strength))
    return plans


def _strongest(standings: list[_Standing]) -> _Standing | None:
    """The standing with the highest positive strength (earliest turn on a tie), if any."""
    live = [standing for standing in standings if standing.strength > 0.0]
    return max(live, key=lambda standing: (standing.strength, -standing.turn), default=None)


def _rebut(transcript: _Transcript, round_: int, rebuttal: _Rebuttal, weight: float) -> None:
    target, argument = rebuttal.target, rebuttal.rebutter.argument
    before = target.strength
    target.strength = before * (1.0 - weight * rebuttal.strength)
    target.rebutted = True
    claim = (
        f"against turn {target.turn} [{target.argument.category}] ({before:.2f} -> "
        f"{target.strength:.2f}): [{argument.category}] {argument.claim}"
    )
    transcript.add(
        round_,
        argument.speaker,
        "rebuttal",
        claim,
        argument.evidence,
        rebuttal.strength,
        target.turn,
    )


def _totals(standings: list[_Standing]) -> tuple[float, float]:
    """Effective strength summed per side, in transcript order (fixed, so bitwise repeatable)."""
    bull = sum((s.strength for s in standings if s.argument.speaker == "bull"), 0.0)
    bear = sum((s.strength for s in standings if s.argument.speaker == "bear"), 0.0)
    return bull, bear


def _verdict(
    standings: list[_Standing], brief: ResearchBrief, rounds_run: int, stopped_early: bool
) -> DebateVerdict:
    bull, bear = _totals(standings)
    score = judge_score(bull, bear)
    return DebateVerdict(
        score=score,
        confidence=abs(score) * brief.confidence_factor,
        rounds_run=rounds_run,
        stopped_early=stopped_early,
        bull_strength=bull,
        bear_strength=bear,
    )


def _verdict_claim(
    verdict: DebateVerdict, brief: ResearchBrief, settings: DebateSettings, argued: bool
) -> str:
    if not argued:
        return "no evidence either way: score 0, confidence 0"
    early = ", stopped early: the score stopped moving" if verdict.stopped_early else ""
    return (
        f"score {verdict.score:+.3f} = (bull {verdict.bull_strength:.3f} - bear "
        f"{verdict.bear_strength:.3f}) / (total + {JUDGE_DAMPING}); confidence "
        f"{verdict.confidence:.3f} = |score| x volatility factor {brief.confidence_factor:.2f}; "
        f"{verdict.rounds_run} of {settings.rounds} rounds{early}"
    )


def with_model_ruling(outcome: DebateOutcome, answer: ModelAnswer[JudgeRuling]) -> DebateOutcome:
    """The debate judged by a model: its score and confidence replace the rule judge's (the
    strengths and rounds stay the debate's). Without a ruling a fallback turn says why, and
    the rule judge's verdict stands."""
    transcript = _Transcript()
    transcript.turns = list(outcome.turns[:-1])
    rules_turn, rules, ruling = outcome.turns[-1], outcome.verdict, answer.value
    if ruling is None:
        _announce(transcript, rules_turn.round, "judge", answer.call)
        transcript.add(
            rules_turn.round, "judge", "verdict", rules_turn.claim, strength=rules_turn.strength
        )
        return DebateOutcome(turns=tuple(transcript.turns), verdict=rules)
    verdict = DebateVerdict(
        **{**rules.model_dump(), "score": ruling.score, "confidence": ruling.confidence}
    )
    claim = (
        f"score {verdict.score:+.3f}, confidence {verdict.confidence:.3f}: {ruling.reason} "
        f"(the rule judge: score {rules.score:+.3f}, confidence {rules.confidence:.3f})"
    )
    transcript.add(
        rules_turn.round, "judge", "verdict", claim, strength=verdict.confidence, model=answer.call
    )
    return DebateOutcome(turns=tuple(transcript.turns), verdict=verdict)
