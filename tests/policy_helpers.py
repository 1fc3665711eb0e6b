"""A small PPO policy trained on real candles and made the active model: what the tests of
the RL opinion in backtests share."""

from pathlib import Path

import torch

from core.candles import CandleWindow
from core.settings import RLSettings, Settings
from rl.env import costs_of
from rl.registry import MODELS_FOLDER, ActiveModel, ModelRegistry
from rl.train import TrainingRequest, train_model


def active_policy(home: Path, series: CandleWindow, train_until: int, seed: int) -> ActiveModel:
    """Train on ``series`` up to ``train_until`` (512 steps), register the model in
    ``home`` and activate it; torch's thread count is left as it was."""
    threads = torch.get_num_threads()
    model = train_model(
        TrainingRequest(
            windows=[series],
            train_until=train_until,
            timesteps=512,
            seed=seed,
            settings=RLSettings(n_steps=128, batch_size=64),
            costs=costs_of(Settings()),
        )
    )
    torch.set_num_threads(threads)
    registry = ModelRegistry(home / MODELS_FOLDER)
    registry.add(model.model_id, model.files, model.meta)
    registry.activate(model.model_id)
    active = registry.load_active()
    assert isinstance(active, ActiveModel)
    return active
