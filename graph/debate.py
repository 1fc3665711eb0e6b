"""The debate (DESIGN §5) as pure functions: arguments and context in, transcript and verdict out.

Round 0: the bull's opening arguments, the bear's, the researcher's context and its checks
of the claims against that context. Rounds 1..n: each side answers the opponent's strongest
argument not yet answered, using its own strongest argument of another category. After each
round the judge rescores; the debate stops once the score moves less than
``early_stop_delta``. A last "verdict" turn by the judge states the outcome.

The arithmetic (``debate_rounds``) runs over a board of many debates at once, one row per
bar — a backtest debates every bar in one call — and ``run_debate`` is that arithmetic on a
one-row board plus the words of its transcript: one implementation of the rules for both.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from agents.chat_backend import ModelAnswer
from agents.model_agents import JudgeRuling
from agents.researcher import ClaimCheck, check_claims
from agents.rules import BoolArray, IntArray
from core.candles import FloatArray
from core.decision import DebateTurn, DebateVerdict, ModelCall
from core.evidence import Argument, Evidence, ResearchBrief, Speaker
from core.settings import MAX_DEBATE_ROUNDS, DebateSettings

# The judge's score is (B - S) / (B + S + JUDGE_DAMPING). The damping keeps thin evidence
# from sounding certain: one full-strength argument alone scores 0.5, one of 0.3 scores 0.23
# (below the balanced profile's minimum confidence), two agreeing of 0.5 score 0.5.
JUDGE_DAMPING = 1.0

TurnKind = Literal["argument", "rebuttal", "context", "verdict", "fallback"]
NO_SLOT = -1


@dataclass(frozen=True)
class DebateOutcome:
    turns: tuple[DebateTurn, ...]
    verdict: DebateVerdict


@dataclass(frozen=True)
class Board:
    """Debates as rows of argument slots, shape (debates, slots): in each row the bull's
    arguments in the order they were made, then the bear's (a slot's position is its order
    in the transcript, so the earlier of two equal arguments is the lower slot)."""

    present: BoolArray  # the slot holds an argument
    bull: BoolArray  # it is the bull's (else the bear's)
    category: IntArray  # equal codes: the same category
    strength: FloatArray  # the argument's strength as made
    factor: FloatArray  # the researcher's check of it (1.0: no doubt)


class Rebuttals(NamedTuple):
    """Every round's rebuttals, shape (debates, rounds, 2): the bull's at [..., 0], the
    bear's at [..., 1]; NO_SLOT where a side had none."""

    target: IntArray  # the slot answered
    rebutter: IntArray  # the slot answering it
    strength: FloatArray  # the rebutter's strength as the round began
    before: FloatArray  # the target's strength before and after
    after: FloatArray


class Debated(NamedTuple):
    """The arithmetic of each debate of a board: one entry per row."""

    checked: FloatArray  # (debates, slots): strengths after the researcher's checks
    rebuttals: Rebuttals
    rounds_run: IntArray
    stopped_early: BoolArray
    bull_strength: FloatArray
    bear_strength: FloatArray
    score: FloatArray


def judge_score(bull_strength: Any, bear_strength: Any) -> Any:
    """Net strength over total, damped: in (-1, 1) for non-negative strengths, 0 for none
    (numbers, or arrays of them)."""
    return (bull_strength - bear_strength) / (bull_strength + bear_strength + JUDGE_DAMPING)


def debate_rounds(board: Board, settings: DebateSettings) -> Debated:
    """The checks, then up to ``settings.rounds`` rounds of rebuttal, for every row."""
    # Validation already caps rounds; the min keeps the hard limit even for unvalidated settings.
    limit = min(settings.rounds, MAX_DEBATE_ROUNDS)
    strength = board.strength * board.factor
    checked = strength.copy()
    debates = strength.shape[0]
    rows = np.arange(debates)
    bull = board.present & board.bull
    bear = board.present & ~board.bull
    rebutted = np.zeros(strength.shape, dtype=bool)
    shape = (debates, limit, 2)
    trace = Rebuttals(
        np.full(shape, NO_SLOT),
        np.full(shape, NO_SLOT),
        np.full(shape, np.nan),
        np.full(shape, np.nan),
        np.full(shape, np.nan),
    )
    rounds_run = np.full(debates, limit)
    stopped_early = np.zeros(debates, dtype=bool)
    debating = np.ones(debates, dtype=bool)
    score = judge_score(*_totals(strength, bull, bear))
    for round_ in range(limit):
        if not debating.any():  # every debate has stopped: the later rounds change nothing
            break
        # Both sides choose from the standings as the round began: no first-mover edge.
        plans = [
            _plan(strength, board.category, own, opponent & ~rebutted, debating)
            for own, opponent in ((bull, bear), (bear, bull))
        ]
        for side, (target, rebutter, rebutter_strength) in enumerate(plans):
            planned = rows[target != NO_SLOT]
            answered = target[planned]
            before = strength[planned, answered]
            after = before * (1.0 - settings.rebuttal_weight * rebutter_strength[planned])
            strength[planned, answered] = after
            rebutted[planned, answered] = True
            for field, value in zip(
                trace,
                (answered, rebutter[planned], rebutter_strength[planned], before, after),
                strict=True,
            ):
                field[planned, round_, side] = value
        previous, score = score, judge_score(*_totals(strength, bull, bear))
        stops = debating & (np.abs(score - previous) < settings.early_stop_delta)
        rounds_run[stops] = round_ + 1
        stopped_early[stops] = round_ + 1 < limit
        debating &= ~stops
    bull_total, bear_total = _totals(strength, bull, bear)
    return Debated(checked, trace, rounds_run, stopped_early, bull_total, bear_total, score)


def _plan(
    strength: FloatArray,
    category: IntArray,
    own: BoolArray,
    targets: BoolArray,
    debating: BoolArray,
) -> tuple[IntArray, IntArray, FloatArray]:
    """One side's rebuttal in each row: the opponent's strongest argument not yet answered,
    answered by the side's own strongest of another category; NO_SLOT where there is none."""
    rows = np.arange(strength.shape[0])
    if strength.shape[1] == 0:  # no argument made: nothing to answer
        nothing = np.full(rows.shape, NO_SLOT)
        return nothing, nothing, np.zeros(rows.shape)
    target = _strongest(strength, targets & debating[:, np.newaxis])
    target_category = category[rows, np.maximum(target, 0)]
    answering = own & (category != target_category[:, np.newaxis])
    rebutter = _strongest(strength, answering & (target != NO_SLOT)[:, np.newaxis])
    target = np.where(rebutter == NO_SLOT, NO_SLOT, target)
    return target, rebutter, strength[rows, np.maximum(rebutter, 0)]


def _strongest(strength: FloatArray, candidates: BoolArray) -> IntArray:
    """Per row, the candidate slot with the highest positive strength (the earliest on a
    tie: argmax takes the first), or NO_SLOT."""
    live = candidates & (strength > 0.0)
    pick = np.argmax(np.where(live, strength, -np.inf), axis=1)
    return np.where(live.any(axis=1), pick, NO_SLOT)


def _totals(strength: FloatArray, bull: BoolArray, bear: BoolArray) -> tuple[Any, Any]:
    """Effective strength summed per side, slot by slot in transcript order (fixed, so
    bitwise repeatable: accumulate adds left to right; adding 0.0 for the other side's
    slots changes no sum)."""
    if strength.shape[1] == 0:
        return np.zeros(strength.shape[0]), np.zeros(strength.shape[0])
    bull_total = np.add.accumulate(np.where(bull, strength, 0.0), axis=1)[:, -1]
    bear_total = np.add.accumulate(np.where(bear, strength, 0.0), axis=1)[:, -1]
    return bull_total, bear_total


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
    turns = _open(transcript, "bull", bull, calls.get("bull"))
    turns += _open(transcript, "bear", bear, calls.get("bear"))
    _add_context(transcript, brief, calls.get("researcher"))
    arguments = (*bull, *bear)
    checks = check_claims(brief, arguments)
    debated = debate_rounds(_board_of(arguments, _check_factors(len(arguments), checks)), settings)
    for check in checks:
        before, after = (
            arguments[check.position].strength,
            float(debated.checked[0, check.position]),
        )
        turn = turns[check.position]
        claim = f"{check.claim} (turn {turn}: {before:.2f} -> {after:.2f})"
        strength = 1.0 - check.factor
        transcript.add(0, "researcher", "rebuttal", claim, check.evidence, strength, turn)
    rounds_run = int(debated.rounds_run[0])
    _add_rebuttals(transcript, arguments, turns, debated.rebuttals, rounds_run)
    score = float(debated.score[0])
    verdict = DebateVerdict(
        score=score,
        confidence=abs(score) * brief.confidence_factor,
        rounds_run=rounds_run,
        stopped_early=bool(debated.stopped_early[0]),
        bull_strength=float(debated.bull_strength[0]),
        bear_strength=float(debated.bear_strength[0]),
    )
    claim = _verdict_claim(verdict, brief, settings, bool(arguments))
    transcript.add(rounds_run, "judge", "verdict", claim, strength=verdict.confidence)
    return DebateOutcome(turns=tuple(transcript.turns), verdict=verdict)


def _check_factors(count: int, checks: Sequence[ClaimCheck]) -> list[float]:
    """Each argument's check factor: 1.0 unless the researcher doubted it (at most one
    doubt per argument: each doubt is about another category)."""
    factor = [1.0] * count
    for check in checks:
        factor[check.position] = check.factor
    return factor


def _board_of(arguments: Sequence[Argument], factor: Sequence[float]) -> Board:
    """One debate's arguments as a one-row board."""
    codes: dict[str, int] = {}
    category = [codes.setdefault(argument.category, len(codes)) for argument in arguments]
    return Board(
        present=np.ones((1, len(arguments)), dtype=bool),
        bull=np.array([[argument.speaker == "bull" for argument in arguments]], dtype=bool),
        category=np.array([category], dtype=np.intp).reshape(1, len(arguments)),
        strength=np.array([[argument.strength for argument in arguments]]).reshape(
            1, len(arguments)
        ),
        factor=np.array([factor], dtype=np.float64).reshape(1, len(arguments)),
    )


def _add_rebuttals(
    transcript: _Transcript,
    arguments: Sequence[Argument],
    turns: Sequence[int],
    rebuttals: Rebuttals,
    rounds_run: int,
) -> None:
    """The rebuttal turns of a one-row debate, round by round, the bull's first."""
    for round_ in range(rounds_run):
        for side in (0, 1):
            answered = int(rebuttals.target[0, round_, side])
            if answered == NO_SLOT:
                continue
            target, argument = (
                arguments[answered],
                arguments[int(rebuttals.rebutter[0, round_, side])],
            )
            before, after = rebuttals.before[0, round_, side], rebuttals.after[0, round_, side]
            claim = (
                f"against turn {turns[answered]} [{target.category}] ({before:.2f} -> "
                f"{after:.2f}): [{argument.category}] {argument.claim}"
            )
            transcript.add(
                round_ + 1,
                argument.speaker,
                "rebuttal",
                claim,
                argument.evidence,
                float(rebuttals.strength[0, round_, side]),
                turns[answered],
            )


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
) -> list[int]:
    """The side's opening turns; the turn index of each argument, in order."""
    model = _announce(transcript, 0, side, call)
    if not arguments:
        claim = f"the {side} makes no argument: no evidence for it"
        transcript.add(0, side, "argument", claim, model=model)
    turns = []
    for argument in arguments:
        if argument.speaker != side:
            raise ValueError(f"a {argument.speaker} argument was handed in as the {side}'s")
        claim = f"[{argument.category}] {argument.claim}"
        turns.append(
            transcript.add(
                0, side, "argument", claim, argument.evidence, argument.strength, model=model
            )
        )
    return turns


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
