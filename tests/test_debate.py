"""The debate: transcript order, rebuttals, the round limit, early stop and the judge."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.evidence import Argument, ContextItem, Evidence, ResearchBrief
from core.settings import MAX_DEBATE_ROUNDS, DebateSettings
from graph.debate import JUDGE_DAMPING, DebateOutcome, judge_score, run_debate

CATEGORIES = ("trend", "momentum", "mean_reversion", "volume", "volatility")
QUIET = ResearchBrief(items=(), missing=(), confidence_factor=1.0)
# Never stop early: every round runs, so rebuttal arithmetic can be checked round by round.
ALL_ROUNDS = DebateSettings(rounds=2, early_stop_delta=0.0, rebuttal_weight=0.5)


def argue(speaker: str, category: str, strength: float) -> Argument:
    evidence = Evidence(name=f"{category}_reading", value=strength, window="14 bars")
    return Argument.model_validate(
        {
            "speaker": speaker,
            "stance": speaker,
            "category": category,
            "claim": f"{category} reading {strength}",
            "evidence": (evidence,),
            "strength": strength,
        }
    )


def high_volatility_brief(rank: float) -> ResearchBrief:
    evidence = Evidence(name="atr_pct_rank", value=rank, window="250 bars")
    regime = ContextItem(kind="volatility_regime", summary="high", evidence=(evidence,))
    return ResearchBrief(items=(regime,), missing=("news: none",), confidence_factor=0.7)


def rebuttals(outcome: DebateOutcome) -> list[tuple[str, int | None, int]]:
    return [(t.speaker, t.target, t.round) for t in outcome.turns if t.kind == "rebuttal"]


def test_a_rebuttal_weakens_its_target_and_names_it() -> None:
    bull = [argue("bull", "trend", 0.8)]
    bear = [argue("bear", "mean_reversion", 0.6)]
    outcome = run_debate(bull, bear, QUIET, DebateSettings(rounds=1, rebuttal_weight=0.5))
    # Both sides answer at once, each with its strength as the round began.
    assert rebuttals(outcome) == [("bull", 1, 1), ("bear", 0, 1)]
    assert outcome.verdict.bull_strength == pytest.approx(0.8 * (1 - 0.5 * 0.6))
    assert outcome.verdict.bear_strength == pytest.approx(0.6 * (1 - 0.5 * 0.8))
    bull_rebuttal = next(t for t in outcome.turns if t.kind == "rebuttal")
    assert bull_rebuttal.evidence == bull[0].evidence
    assert bull_rebuttal.strength == 0.8


def test_each_argument_is_answered_once_strongest_first() -> None:
    bull = [argue("bull", "trend", 0.9), argue("bull", "volume", 0.5)]
    bear = [argue("bear", "momentum", 0.7), argue("bear", "mean_reversion", 0.4)]
    outcome = run_debate(bull, bear, QUIET, ALL_ROUNDS)
    targets = [(speaker, target) for speaker, target, _ in rebuttals(outcome)]
    assert targets == [("bull", 2), ("bear", 0), ("bull", 3), ("bear", 1)]


def test_an_argument_is_not_answered_from_its_own_category() -> None:
    bull = [argue("bull", "trend", 0.9)]
    bear = [argue("bear", "trend", 0.7)]
    outcome = run_debate(bull, bear, QUIET, ALL_ROUNDS)
    assert rebuttals(outcome) == []
    assert (outcome.verdict.bull_strength, outcome.verdict.bear_strength) == (0.9, 0.7)


def test_the_debate_stops_early_once_the_score_stops_moving() -> None:
    bull = [argue("bull", "trend", 0.9)]
    bear = [argue("bear", "trend", 0.7)]
    outcome = run_debate(bull, bear, QUIET, DebateSettings(rounds=4, early_stop_delta=0.01))
    assert (outcome.verdict.rounds_run, outcome.verdict.stopped_early) == (1, True)


def test_running_all_rounds_is_not_an_early_stop() -> None:
    bull = [argue("bull", "trend", 0.9)]
    bear = [argue("bear", "trend", 0.7)]
    outcome = run_debate(bull, bear, QUIET, DebateSettings(rounds=1, early_stop_delta=0.01))
    assert (outcome.verdict.rounds_run, outcome.verdict.stopped_early) == (1, False)


@pytest.mark.parametrize("rounds", range(MAX_DEBATE_ROUNDS + 1))
def test_rounds_never_exceed_the_setting(rounds: int) -> None:
    bull = [argue("bull", category, 0.9 - 0.1 * i) for i, category in enumerate(CATEGORIES)]
    bear = [argue("bear", category, 0.85 - 0.1 * i) for i, category in enumerate(CATEGORIES)]
    settings = DebateSettings(rounds=rounds, early_stop_delta=0.0)
    outcome = run_debate(bull, bear, QUIET, settings)
    assert outcome.verdict.rounds_run == rounds
    assert max(turn.round for turn in outcome.turns) == rounds


def test_the_hard_round_limit_holds_even_for_unvalidated_settings() -> None:
    settings = DebateSettings.model_construct(rounds=50, early_stop_delta=0.0, rebuttal_weight=0.5)
    bull = [argue("bull", category, 0.5) for category in CATEGORIES]
    bear = [argue("bear", category, 0.5) for category in CATEGORIES]
    outcome = run_debate(bull, bear, QUIET, settings)
    assert outcome.verdict.rounds_run == MAX_DEBATE_ROUNDS


def test_an_empty_debate_is_a_verdict_of_no_evidence() -> None:
    outcome = run_debate((), (), high_volatility_brief(0.9), DebateSettings())
    verdict = outcome.verdict
    assert (verdict.score, verdict.confidence) == (0.0, 0.0)
    assert (verdict.bull_strength, verdict.bear_strength) == (0.0, 0.0)
    speakers = [(t.speaker, t.kind) for t in outcome.turns]
    assert speakers == [
        ("bull", "argument"),
        ("bear", "argument"),
        ("researcher", "context"),
        ("researcher", "context"),
        ("judge", "verdict"),
    ]
    assert "no evidence either way" in outcome.turns[-1].claim


def test_round_zero_opens_with_bull_then_bear_then_the_researcher() -> None:
    bull = [argue("bull", "trend", 0.6)]
    bear = [argue("bear", "mean_reversion", 0.5), argue("bear", "volume", 0.3)]
    outcome = run_debate(bull, bear, high_volatility_brief(0.9), ALL_ROUNDS)
    opening = [(t.round, t.speaker, t.kind) for t in outcome.turns[:6]]
    assert opening == [
        (0, "bull", "argument"),
        (0, "bear", "argument"),
        (0, "bear", "argument"),
        (0, "researcher", "context"),
        (0, "researcher", "context"),
        (0, "researcher", "rebuttal"),
    ]


def test_the_researcher_check_discounts_the_claim_it_names() -> None:
    bear = [argue("bear", "mean_reversion", 0.8)]
    outcome = run_debate((), bear, high_volatility_brief(0.9), ALL_ROUNDS)
    (check,) = [t for t in outcome.turns if t.speaker == "researcher" and t.kind == "rebuttal"]
    assert check.target == 1
    assert [e.name for e in check.evidence] == ["atr_pct_rank"]
    # Rank 0.9 is half-way through the high regime: a quarter off the claim.
    assert check.strength == pytest.approx(0.25)
    assert outcome.verdict.bear_strength == pytest.approx(0.6)


def test_the_judge_scales_confidence_by_the_researchers_factor() -> None:
    bull = [argue("bull", "trend", 1.0)]
    outcome = run_debate(bull, (), high_volatility_brief(0.5), DebateSettings())
    assert outcome.verdict.score == pytest.approx(1.0 / (1.0 + JUDGE_DAMPING))
    assert outcome.verdict.confidence == pytest.approx(0.7 / (1.0 + JUDGE_DAMPING))
    verdict_turn = outcome.turns[-1]
    assert verdict_turn.strength == outcome.verdict.confidence
    assert "+0.500" in verdict_turn.claim
    assert "0.350" in verdict_turn.claim


def test_an_argument_from_the_wrong_side_is_refused() -> None:
    with pytest.raises(ValueError, match="bear argument"):
        run_debate([argue("bear", "trend", 0.5)], (), QUIET, DebateSettings())


arguments = st.builds(
    argue,
    speaker=st.just("bull"),
    category=st.sampled_from(CATEGORIES),
    strength=st.floats(min_value=0.0, max_value=1.0),
)
settings_strategy = st.builds(
    DebateSettings,
    rounds=st.integers(min_value=0, max_value=MAX_DEBATE_ROUNDS),
    early_stop_delta=st.floats(min_value=0.0, max_value=0.2),
    rebuttal_weight=st.floats(min_value=0.0, max_value=1.0),
)


def as_bear(argument: Argument) -> Argument:
    return argument.model_copy(update={"speaker": "bear", "stance": "bear"})


@given(
    bull=st.lists(arguments, max_size=8),
    bear=st.lists(arguments.map(as_bear), max_size=8),
    rank=st.floats(min_value=0.0, max_value=1.0),
    settings=settings_strategy,
)
def test_any_debate_is_well_formed_and_bounded(
    bull: list[Argument], bear: list[Argument], rank: float, settings: DebateSettings
) -> None:
    outcome = run_debate(bull, bear, high_volatility_brief(rank), settings)
    verdict = outcome.verdict
    assert -1.0 < verdict.score < 1.0
    assert 0.0 <= verdict.confidence <= abs(verdict.score)
    assert verdict.rounds_run <= settings.rounds
    assert verdict.stopped_early == (verdict.rounds_run < settings.rounds)
    assert [turn.index for turn in outcome.turns] == list(range(len(outcome.turns)))
    assert [turn.kind for turn in outcome.turns].count("verdict") == 1
    assert outcome.turns[-1].kind == "verdict"
    assert outcome.turns[-1].speaker == "judge"
    answered = [
        t.target for t in outcome.turns if t.kind == "rebuttal" and t.speaker != "researcher"
    ]
    assert len(answered) == len(set(answered))
    for turn in outcome.turns:
        if turn.target is not None:
            assert outcome.turns[turn.target].kind == "argument"
            assert outcome.turns[turn.target].speaker != turn.speaker
    assert run_debate(bull, bear, high_volatility_brief(rank), settings) == outcome


@given(
    bull=st.floats(min_value=0.0, max_value=1e6),
    bear=st.floats(min_value=0.0, max_value=1e6),
)
def test_the_judge_score_stays_inside_minus_one_to_one(bull: float, bear: float) -> None:
    assert -1.0 < judge_score(bull, bear) < 1.0
    assert judge_score(bull, bear) == -judge_score(bear, bull)


def test_the_same_debate_twice_is_bitwise_the_same() -> None:
    bull = [argue("bull", "trend", 0.7), argue("bull", "volume", 0.3)]
    bear = [argue("bear", "mean_reversion", 0.55), argue("bear", "momentum", 0.45)]
    first = run_debate(bull, bear, high_volatility_brief(0.93), ALL_ROUNDS)
    second = run_debate(list(bull), list(bear), high_volatility_brief(0.93), ALL_ROUNDS)
    assert first == second
    assert first.verdict.model_dump_json() == second.verdict.model_dump_json()
    assert [t.model_dump_json() for t in first.turns] == [t.model_dump_json() for t in second.turns]
    assert type(first.verdict.score) is float
