"""PPO training on the candles closed by ``train_until``, judged on a held-out validation slice.

Nothing after ``train_until`` is read: each window is cut to the candles closed by then
(close time ≤ train_until, the time contract's own bound) before any feature is computed.
The newest ``validation_fraction`` of what remains is held out; the feature scaling is
fitted on the training part alone. With a fixed seed, one torch thread and torch's
deterministic algorithms, the same inputs give the same weights and the same validation
metrics, bit for bit."""

import io
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from core.candles import CandleWindow
from core.hashing import hash_json
from core.settings import RLSettings
from core.timeframes import format_timestamp
from rl.env import BUY, MarketSeries, TradingCosts, TradingEnv
from rl.features import FEATURE_NAMES
from rl.metrics import fixed_chooser, judge, policy_chooser
from rl.observation import FeatureScaling
from rl.policy import NumpyPolicy
from rl.registry import MODEL_FILE, POLICY_FILE

# Below this many bars a slice says nothing about a policy.
MIN_SLICE_BARS = 50


@dataclass(frozen=True)
class TrainingRequest:
    windows: Sequence[CandleWindow]
    train_until: int
    timesteps: int
    seed: int
    settings: RLSettings
    costs: TradingCosts


@dataclass(frozen=True)
class TrainedModel:
    model_id: str
    policy: NumpyPolicy
    files: dict[str, bytes]
    meta: dict[str, Any]


class _Progress(BaseCallback):
    def __init__(self, report: Callable[[int], None]) -> None:
        super().__init__()
        self._report = report

    def _on_step(self) -> bool:
        self._report(self.num_timesteps)
        return True


def cut_before(window: CandleWindow, until: int) -> CandleWindow:
    """The candles of ``window`` closed by ``until`` (open + timeframe ≤ until)."""
    count = int(np.searchsorted(window.open_time + window.timeframe_ms, until, side="right"))
    return window.part(0, count)


def split(series: MarketSeries, validation_fraction: float) -> tuple[MarketSeries, MarketSeries]:
    cut = int(len(series) * (1.0 - validation_fraction))
    train, validation = series.part(0, cut), series.part(cut, len(series))
    if min(len(train), len(validation)) < MIN_SLICE_BARS:
        raise ValueError(
            f"{series.name}: {len(series)} usable bars give {len(train)} to train on and "
            f"{len(validation)} to validate on; need {MIN_SLICE_BARS} each (more data, or a "
            "later --train-until)"
        )
    return train, validation


def train_model(
    request: TrainingRequest, progress: Callable[[int], None] | None = None
) -> TrainedModel:
    windows = [cut_before(window, request.train_until) for window in request.windows]
    timeframes = {window.timeframe for window in windows}
    if len(timeframes) != 1:
        raise ValueError(f"train on one timeframe at a time, got {sorted(timeframes)}")
    pairs = [
        split(MarketSeries.from_window(window), request.settings.validation_fraction)
        for window in windows
    ]
    train_parts = [train for train, _ in pairs]
    scaling = FeatureScaling.fit(np.concatenate([part.rows for part in train_parts]))
    settings = request.settings
    model = fit_ppo(train_parts, scaling, request, progress)
    identity = {
        "data": [window.content_hash() for window in windows],
        "train_until": request.train_until,
        "timesteps": request.timesteps,
        "seed": request.seed,
        "settings": settings.model_dump(mode="json", exclude={"data_dir"}),
        "costs": {"fraction": request.costs.fraction, "penalty": request.costs.penalty},
    }
    cut = format_timestamp(request.train_until)[:16].replace(":", "").replace("-", "")
    model_id = f"ppo-{cut}-{hash_json(identity)[:10]}"
    policy = export_actor(model, model_id, scaling)
    validation = {part.name: _validation_metrics(part, policy, request.costs) for _, part in pairs}
    buffer = io.BytesIO()
    model.save(buffer)
    meta = {
        "id": model_id,
        "algorithm": "PPO (stable-baselines3 MlpPolicy)",
        "timeframe": timeframes.pop(),
        "series": [window.symbol for window in windows],
        "data_hashes": identity["data"],
        "data_start": min(int(part.close_time[0]) for part in train_parts),
        "data_end": max(int(part.close_time[-1]) for _, part in pairs),
        "train_until": request.train_until,
        "train_until_utc": format_timestamp(request.train_until),
        "features": list(FEATURE_NAMES),
        "scaling": scaling.to_json(),
        "timesteps": request.timesteps,
        "seed": request.seed,
        "settings": identity["settings"],
        "costs": identity["costs"],
        "validation": validation,
        "versions": {
            "python": platform.python_version(),
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
            "gymnasium": version("gymnasium"),
            "numpy": np.__version__,
        },
    }
    files = {MODEL_FILE: buffer.getvalue(), POLICY_FILE: _policy_bytes(policy)}
    return TrainedModel(model_id=model_id, policy=policy, files=files, meta=meta)


def fit_ppo(
    parts: Sequence[MarketSeries],
    scaling: FeatureScaling,
    request: TrainingRequest,
    progress: Callable[[int], None] | None = None,
) -> PPO:
    # One thread and deterministic kernels for bit-for-bit repeats; the process's own
    # torch settings are given back afterwards.
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        settings = request.settings
        env = TradingEnv(parts, scaling, request.costs, settings.max_drawdown)
        model = PPO(
            "MlpPolicy",
            env,
            learning_rate=settings.learning_rate,
            n_steps=settings.n_steps,
            batch_size=settings.batch_size,
            gamma=settings.gamma,
            seed=request.seed,
            device="cpu",
            verbose=0,
        )
        model.learn(request.timesteps, callback=_Progress(progress) if progress else None)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return model


def _validation_metrics(
    part: MarketSeries, policy: NumpyPolicy, costs: TradingCosts
) -> dict[str, dict[str, float]]:
    rl, _ = judge(part, policy.scaling, costs, policy_chooser(policy.probabilities))
    hold, _ = judge(part, policy.scaling, costs, fixed_chooser(BUY))
    return {"rl": rl.as_dict(), "buy_and_hold": hold.as_dict()}


def _policy_bytes(policy: NumpyPolicy) -> bytes:
    buffer = io.BytesIO()
    policy.write(buffer)
    return buffer.getvalue()


def export_actor(model: PPO, model_id: str, scaling: FeatureScaling) -> NumpyPolicy:
    """The actor of an SB3 PPO MlpPolicy (Linear/Tanh layers) as a NumpyPolicy."""
    layers: list[nn.Linear] = []
    for module in model.policy.mlp_extractor.policy_net:
        if isinstance(module, nn.Linear):
            layers.append(module)
        elif not isinstance(module, nn.Tanh):
            raise ValueError(f"cannot export a {type(module).__name__} layer (Linear/Tanh only)")
    action_net = model.policy.action_net
    if not isinstance(action_net, nn.Linear):
        raise ValueError("the action layer must be Linear (a Discrete action space)")
    layers.append(action_net)
    return NumpyPolicy(
        model_id=model_id,
        weights=tuple(layer.weight.detach().double().numpy().copy() for layer in layers),
        biases=tuple(layer.bias.detach().double().numpy().copy() for layer in layers),
        scaling=scaling,
    )
