"""The RL signal: env, features shared with the decision path, training, registry, inference.

One CI-sized PPO training (a few seconds) on the real XRP/USDT candles is shared by the
module; a second run on poisoned data proves the training reads nothing after
--train-until and that the same seed gives the same model and metrics, bit for bit.
"""

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import torch
from click.testing import CliRunner
from conftest import shared_csv
from decision_helpers import load
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import CategoricalDistribution

from api.cli import cli
from core.candles import CandleWindow
from core.decision import Abstained, RLOpinion
from core.market_features import market_snapshot
from core.settings import RLSettings, Settings
from core.snapshot import MarketSnapshot
from core.timeframes import parse_timestamp
from core.trading import HoldingView, PortfolioView
from graph.nodes import book_features
from ingestion.candle_file import parse_candle_file
from rl.env import BUY, HOLD, SELL, MarketSeries, TradingCosts, TradingEnv, costs_of
from rl.features import MARKET_FEATURES, market_feature_rows, snapshot_feature_row
from rl.observation import FeatureScaling, build_observation
from rl.registry import MODELS_FOLDER, ModelRegistry
from rl.train import TrainedModel, TrainingRequest, train_model
from storage.models import CandleRow

FILE = "XRP_USDT-5m.csv"
TRAIN_UNTIL = "2021-11-20T00:00:00Z"
CI_SETTINGS = RLSettings(n_steps=128, batch_size=64)
CI_TIMESTEPS = 512
SEED = 11


def _window(path: Path) -> CandleWindow:
    return parse_candle_file(path.read_bytes(), "XRP/USDT", "5m", "import").candles


def _request(window: CandleWindow, seed: int = SEED) -> TrainingRequest:
    return TrainingRequest(
        windows=[window],
        train_until=parse_timestamp(TRAIN_UNTIL),
        timesteps=CI_TIMESTEPS,
        seed=seed,
        settings=CI_SETTINGS,
        costs=costs_of(Settings()),
    )


@dataclass(frozen=True)
class Trained:
    window: CandleWindow
    model: TrainedModel


@pytest.fixture(scope="module")
def trained() -> Iterator[Trained]:
    window = _window(shared_csv(FILE))
    threads = torch.get_num_threads()
    yield Trained(window, train_model(_request(window)))
    assert torch.get_num_threads() == threads, "training gave the process its torch back"


def _env(window: CandleWindow, max_drawdown: float = 0.25) -> TradingEnv:
    series = MarketSeries.from_window(window)
    return TradingEnv([series], FeatureScaling.fit(series.rows), costs_of(Settings()), max_drawdown)


def test_env_passes_gymnasium_env_checker() -> None:
    env = _env(_window(shared_csv(FILE)))
    check_env(env, skip_render_check=True)
    first, _ = env.reset(seed=5)
    again, _ = env.reset(seed=5)
    assert np.array_equal(first, again)


def test_env_reward_is_the_value_change_net_of_costs() -> None:
    """Buy fills at the next open paying fee + half-spread, is marked at that bar's close;
    sell leaves the position at the following open, paying again; the penalty is per trade."""
    window = _window(shared_csv(FILE))
    series = MarketSeries.from_window(window)
    costs = TradingCosts(fraction=0.002, penalty=0.0005)
    env = TradingEnv([series], FeatureScaling.fit(series.rows), costs, max_drawdown=1.0)
    env.reset(options={"series": 0, "start": 0})
    o, c = series.open, series.close
    _, reward, *_ = env.step(BUY)
    value = (1 - 0.002) * c[1] / o[1]
    assert reward == pytest.approx(value - 1.0 - 0.0005, abs=1e-12)
    observation, reward, *_ = env.step(HOLD)
    held = value * c[2] / c[1]
    assert reward == pytest.approx(held - value, abs=1e-12)
    assert observation[-2] == 1.0
    assert observation[-1] == pytest.approx(held - 1.0, abs=1e-6)  # vs the 1.0 paid in
    observation, reward, *_ = env.step(SELL)
    sold = held * o[3] / c[2] * (1 - 0.002)
    assert reward == pytest.approx(sold - held - 0.0005, abs=1e-12)
    assert observation[-2] == 0.0
    assert observation[-1] == 0.0


def test_env_stops_at_the_drawdown_limit_or_the_end_of_data() -> None:
    window = _window(shared_csv(FILE))
    env = _env(window, max_drawdown=0.01)
    env.reset(options={"series": 0, "start": 0})
    terminated = truncated = False
    values = [1.0]
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(BUY)
        values.append(info["value"])
    assert terminated  # XRP fell more than 1 % from a peak within the file
    assert values[-1] < 0.99 * max(values)
    assert all(value >= 0.99 * max(values[: i + 1]) for i, value in enumerate(values[:-1]))

    unlimited = _env(window, max_drawdown=1.0)
    unlimited.reset(options={"series": 0, "start": 0})
    steps = 0
    while True:
        steps += 1
        _, _, terminated, truncated, _ = unlimited.step(HOLD)
        if terminated or truncated:
            break
    assert truncated
    assert not terminated
    assert steps == len(MarketSeries.from_window(window)) - 1


def test_vectorised_features_equal_the_decision_paths_at_each_bar() -> None:
    """Row i of market_feature_rows against the snapshot the decision at bar i's close
    computes over its 250-bar lookback: the return and volume exactly, RSI and MACD within
    the decay of their seeds."""
    window = _window(shared_csv(FILE))
    rows = market_feature_rows(window)
    for bar in range(300, len(window), 53):
        lookback = window.part(bar - 249, bar + 1)
        snapshot = market_snapshot(lookback, int(lookback.open_time[-1]) + window.timeframe_ms)
        row = snapshot_feature_row(snapshot, None)
        assert row[0] == rows[bar][0]
        assert row[1] == rows[bar][1]
        assert row[2] == pytest.approx(rows[bar][2], abs=1e-5)
        assert row[3] == pytest.approx(rows[bar][3], rel=1e-7, abs=1e-9)
        assert row[4] == 0.0


def test_training_reads_nothing_after_train_until_and_repeats_bit_for_bit(
    trained: Trained,
) -> None:
    window = trained.window
    after = window.open_time + window.timeframe_ms > parse_timestamp(TRAIN_UNTIL)
    assert after.any()
    poisoned = CandleWindow(
        **{
            **window.__dict__,
            "open": np.where(after, 1e9, window.open),
            "high": np.where(after, 1e9, window.high),
            "low": np.where(after, 1e-9, window.low),
            "close": np.where(after, 5e8, window.close),
            "volume": np.where(after, 1e15, window.volume),
        }
    )
    again = train_model(_request(poisoned))
    first = trained.model
    assert again.model_id == first.model_id
    assert again.meta["validation"] == first.meta["validation"]
    for ours, theirs in zip(first.policy.weights, again.policy.weights, strict=True):
        assert np.array_equal(ours, theirs)
    assert first.meta["data_end"] <= parse_timestamp(TRAIN_UNTIL)
    other_seed = train_model(_request(window, seed=SEED + 1))
    assert other_seed.model_id != first.model_id
    assert not np.array_equal(other_seed.policy.weights[0], first.policy.weights[0])


def test_numpy_policy_equals_stable_baselines(trained: Trained) -> None:
    model = PPO.load(io.BytesIO(trained.model.files["model.zip"]), device="cpu")
    policy = trained.model.policy
    series = MarketSeries.from_window(trained.window)
    rng = np.random.default_rng(0)
    scaled = policy.scaling.scale(series.rows[::7]).astype(np.float32)
    books = np.column_stack((rng.integers(0, 2, len(scaled)), rng.normal(0, 0.02, len(scaled))))
    observations = np.column_stack((scaled, books)).astype(np.float32)
    with torch.no_grad():
        distribution = model.policy.get_distribution(torch.as_tensor(observations))
    assert isinstance(distribution, CategoricalDistribution)
    expected = distribution.distribution.probs.numpy()
    ours = np.array([policy.probabilities(observation) for observation in observations])
    # torch evaluates in float32, the numpy actor in float64.
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    actions, _ = model.predict(observations, deterministic=True)
    assert np.array_equal(ours.argmax(axis=1), actions)


def test_a_decision_carries_the_active_models_opinion(trained: Trained, tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = ModelRegistry(home / MODELS_FOLDER)
    model = trained.model
    registry.add(model.model_id, model.files, model.meta)
    plain = load(tmp_path / "plain", {"XRP/USDT": shared_csv(FILE)}, "5m")
    before = plain.decide("XRP/USDT", "5m", "2021-11-20T12:00:00Z")
    assert isinstance(before.signals.rl, Abstained)
    assert "no RL model active" in before.signals.rl.reason

    registry.activate(model.model_id)
    loaded = load(home, {"XRP/USDT": shared_csv(FILE)}, "5m", Settings(home=home))
    decision = loaded.decide("XRP/USDT", "5m", "2021-11-20T12:00:00Z")
    opinion = decision.signals.rl
    assert isinstance(opinion, RLOpinion)
    assert opinion.model_id == model.model_id
    assert set(opinion.probabilities) == {"hold", "buy", "sell"}
    assert sum(opinion.probabilities.values()) == pytest.approx(1.0)
    assert opinion.action == max(opinion.probabilities, key=opinion.probabilities.__getitem__)
    assert "rl" in decision.proposal.contributions
    assert decision.config_hash != before.config_hash  # the active model is part of it

    # The observation is the one the env would see at that bar.
    snapshot = MarketSnapshot(
        symbol="XRP/USDT",
        timeframe="5m",
        as_of=0,
        last_close_time=0,
        values={item.name: item for item in decision.evidence},
    )
    bar = (
        int(np.searchsorted(trained.window.open_time, parse_timestamp("2021-11-20T12:00:00Z"))) - 1
    )
    row = market_feature_rows(trained.window)[bar]
    np.testing.assert_allclose(snapshot_feature_row(snapshot, None), row, rtol=1e-7, atol=1e-5)
    expected = model.policy.opinion(
        np.concatenate((model.policy.scaling.scale(row), [0.0, 0.0])).astype(np.float32)
    )
    assert expected.action == opinion.action
    for name, probability in expected.probabilities.items():
        assert opinion.probabilities[name] == pytest.approx(probability, abs=1e-6)
    short = load(home, {"XRP/USDT": shared_csv(FILE)}, "5m", Settings(home=home, lookback_bars=60))
    abstained = short.decide("XRP/USDT", "5m", "2021-11-20T12:00:00Z").signals.rl
    assert isinstance(abstained, Abstained)
    assert "lookback_bars=60 is below the 250 bars" in abstained.reason

    # Poison: every candle after as_of absurd; the decision, RL opinion included, is unchanged.
    as_of = parse_timestamp("2021-11-20T12:00:00Z")
    with loaded.database.session_factory.begin() as session:
        session.execute(
            sa.update(CandleRow)
            .where(CandleRow.open_time + trained.window.timeframe_ms > as_of)
            .values(open=1e9, high=2e9, low=1.0, close=1.5e9, volume=1e15)
        )
    poisoned = loaded.decide("XRP/USDT", "5m", "2021-11-20T12:00:00Z")
    assert poisoned.deterministic_json() == decision.deterministic_json()

    in_sample = loaded.decide("XRP/USDT", "5m", "2021-11-19T12:00:00Z")
    assert isinstance(in_sample.signals.rl, Abstained)
    assert "no out-of-sample opinion at 2021-11-19T12:00:00Z" in in_sample.signals.rl.reason
    assert "rl" not in in_sample.proposal.contributions


def test_a_feature_training_never_saw_vary_cannot_move_the_opinion(trained: Trained) -> None:
    """Trained on candle files without news, the policy has not learned to read sentiment:
    a live score as strong as it gets enters as 0."""
    policy = trained.model.policy
    row = market_feature_rows(trained.window)[400]
    calm, excited = row.copy(), row.copy()
    excited[MARKET_FEATURES.index("sentiment")] = 0.95
    assert np.array_equal(
        build_observation(calm, 0.0, 0.0, policy.scaling),
        build_observation(excited, 0.0, 0.0, policy.scaling),
    )
    assert trained.model.meta["scaling"]["sentiment"]["std"] is None


def test_the_book_enters_the_observation_as_the_env_holds_it() -> None:
    """Position as a share of the most the profile allows (the env's 1 = long) and the open
    position's unrealised PnL as a fraction of its cost (the env's value / basis − 1)."""
    holding = HoldingView(
        "XRP/USDT", "5m", quantity=100.0, cost=100.0, mark_price=1.1, fraction=0.1
    )
    held = PortfolioView(0, 0, {}, {"XRP/USDT": holding}, (), {})
    position, unrealised = book_features(held, "XRP/USDT", max_position_fraction=0.1)
    assert position == pytest.approx(1.0)
    assert unrealised == pytest.approx(0.1)
    flat = PortfolioView(0, 0, {}, {}, (), {})
    assert book_features(flat, "XRP/USDT", max_position_fraction=0.1) == (0.0, 0.0)


def test_cli_trains_lists_and_activates(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        "SIGMAX_HOME": str(home),
        "SIGMAX_RL__N_STEPS": "64",
        "SIGMAX_RL__BATCH_SIZE": "32",
    }
    path = shared_csv(FILE)
    runner = CliRunner()
    args = ["rl", "train", "--data", str(path), "--train-until", TRAIN_UNTIL, "--timesteps", "64"]
    result = runner.invoke(cli, [*args, "--seed", "1"], env=env)
    assert result.exit_code == 0, result.output
    found = re.search(r"^model (\S+) → ", result.output, re.MULTILINE)
    assert found, result.output
    model_id = found[1]
    assert (home / MODELS_FOLDER / model_id / "policy.npz").is_file()
    listed = runner.invoke(cli, ["rl", "list"], env=env)
    assert model_id in listed.output
    assert f"  {model_id}" in listed.output  # not marked active yet
    activated = runner.invoke(cli, ["rl", "activate", model_id], env=env)
    assert activated.exit_code == 0, activated.output
    assert f"* {model_id}" in runner.invoke(cli, ["rl", "list"], env=env).output
    damaged = home / MODELS_FOLDER / "ppo-damaged"
    damaged.mkdir()
    (damaged / "meta.json").write_text("{not json")
    listed = runner.invoke(cli, ["rl", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "! unreadable: ppo-damaged: " in listed.output
    assert f"* {model_id}" in listed.output, "one damaged model hides none of the others"

    twice = runner.invoke(cli, [*args, "--seed", "1"], env=env)
    assert twice.exit_code != 0
    assert "already registered" in twice.output
    unknown = runner.invoke(cli, ["rl", "activate", "nope"], env=env)
    assert unknown.exit_code != 0
    assert "no model 'nope'" in unknown.output
    too_early = runner.invoke(
        cli, [*args[:-3], "2021-11-15T06:00:00Z", "--timesteps", "64"], env=env
    )
    assert too_early.exit_code != 0
    assert "need 50 each" in too_early.output


def test_walk_forward_report_judges_every_strategy_on_unseen_windows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / FILE).symlink_to(shared_csv(FILE))
    out = tmp_path / "report"
    env = {
        "SIGMAX_HOME": str(tmp_path / "home"),
        "SIGMAX_RL__N_STEPS": "64",
        "SIGMAX_RL__BATCH_SIZE": "32",
        "SIGMAX_RL__WALK_FORWARD_WINDOWS": "2",
        "SIGMAX_RL__WALK_FORWARD_TIMESTEPS": "64",
    }
    args = ["rl", "evaluate", "--data-dir", str(data), "--out", str(out)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    report = (out / "WALK_FORWARD.md").read_text()
    assert "sigmax rl evaluate" in report
    assert (out / "XRP_USDT-5m.png").stat().st_size > 0
    rows = {line.split("|")[5].strip(): line for line in report.splitlines() if "| 1 |" in line}
    assert set(rows) == {"rl", "buy_and_hold", "flat", "debate"}
    assert "| flat | +0.00% | +0.00 | 0.00% | 0 |" in rows["flat"]
    # Buy-and-hold on the test window (its second half): in at the second bar's open,
    # paying the costs once, marked at the last close.
    series = MarketSeries.from_window(_window(shared_csv(FILE)))
    half = len(series) // 2
    test = series.part(half, len(series))
    expected = (1 - costs_of(Settings()).fraction) * test.close[-1] / test.open[1] - 1
    assert f"| buy_and_hold | {expected:+.2%} |" in rows["buy_and_hold"]
