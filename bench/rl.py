"""RL speed: env steps per second, PPO training steps per second, in-path inference latency.

Anchors: beside the env, a bare loop over the same precomputed rows (what a step cannot
beat); beside the numpy actor, SB3's own ``model.predict`` on the same observations.
Real data: the BTC/USDT 5m candles of ../shared/data (or $SIGMAX_TEST_DATA).

    .venv/bin/python -m bench.rl            # ~1 min (as a module: a script named rl.py
                                            # would shadow the rl package)
    .venv/bin/python -m bench.rl --quick    # fewer steps

It measures, it does not judge: the exit status is 0 whether a target is met or not.
"""

import argparse
import io
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO

from core.settings import Settings
from core.timeframes import parse_timestamp
from ingestion.candle_file import parse_candle_file
from rl.env import MarketSeries, TradingEnv, costs_of
from rl.observation import FeatureScaling, build_observation
from rl.train import TrainingRequest, train_model

DATA = Path(os.environ.get("SIGMAX_TEST_DATA", "../shared/data")) / "BTC_USDT-5m.csv"


def env_steps_per_second(env: TradingEnv, steps: int) -> float:
    actions = np.random.default_rng(0).integers(0, 3, steps).tolist()
    env.reset(seed=0)
    started = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - started)


def bare_loop_per_second(rows: np.ndarray, steps: int) -> float:
    count = len(rows)
    started = time.perf_counter()
    for index in range(steps):
        rows[index % count].copy()
    return steps / (time.perf_counter() - started)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    steps = 50_000 if args.quick else 300_000
    timesteps = 2_048 if args.quick else 8_192
    settings = Settings()
    window = parse_candle_file(DATA.read_bytes(), "BTC/USDT", "5m", "import").candles
    series = MarketSeries.from_window(window)
    scaling = FeatureScaling.fit(series.rows)
    env = TradingEnv([series], scaling, costs_of(settings), settings.rl.max_drawdown)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} cpus")
    print(f"env: {env_steps_per_second(env, steps):,.0f} steps/s (target ≥ 100,000)")
    print(
        f"  anchor, bare loop over the same rows: {bare_loop_per_second(series.rows, steps):,.0f}/s"
    )

    started = time.perf_counter()
    trained = train_model(
        TrainingRequest(
            windows=[window],
            train_until=parse_timestamp("2023-02-01T00:00:00Z"),
            timesteps=timesteps,
            seed=settings.seed,
            settings=settings.rl,
            costs=costs_of(settings),
        )
    )
    elapsed = time.perf_counter() - started
    print(
        f"PPO training: {timesteps / elapsed:,.0f} steps/s ({timesteps} steps, n_steps "
        f"{settings.rl.n_steps}, batch {settings.rl.batch_size}, 1 torch thread; "
        "validation and export included)"
    )

    policy = trained.policy
    model = PPO.load(io.BytesIO(trained.files["model.zip"]), device="cpu")
    rng = np.random.default_rng(1)
    books = [(float(rng.integers(0, 2)), float(rng.normal(0, 0.01))) for _ in range(2_000)]
    observations = [
        build_observation(row, position, pnl, policy.scaling)
        for row, (position, pnl) in zip(series.rows[-2_000:], books, strict=True)
    ]

    def timed(call: Callable[[int], object]) -> list[float]:
        """Each call timed alone, in its own loop (no other work between samples)."""
        samples = []
        for index in range(len(observations)):
            tick = time.perf_counter()
            call(index)
            samples.append((time.perf_counter() - tick) * 1e6)
        return samples

    rows = series.rows[-2_000:]
    figures = (
        ("numpy policy.opinion(observation)", timed(lambda i: policy.opinion(observations[i]))),
        (
            "build_observation + opinion",
            timed(lambda i: policy.opinion(build_observation(rows[i], *books[i], policy.scaling))),
        ),
        (
            "anchor, SB3 model.predict(deterministic=True)",
            timed(lambda i: model.predict(observations[i], deterministic=True)),
        ),
    )
    for label, samples in figures:
        p50, p99 = percentiles(samples)
        print(f"{label}: p50 {p50:.1f} µs, p99 {p99:.1f} µs")


if __name__ == "__main__":
    main()
