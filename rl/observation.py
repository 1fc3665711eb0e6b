"""From a market feature row and the book to the policy's input: scaled, seven float32 values.

The market features are standardised with the training slice's own mean and standard
deviation (stored with the model), never with constants; position (0 flat … 1 the most the
policy may hold) and unrealised PnL (a fraction of the position's cost) are scale-free as
they are.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.candles import FloatArray
from rl.features import FEATURE_NAMES, MARKET_FEATURES

Float32Array = npt.NDArray[np.float32]
OBSERVATION_SIZE = len(FEATURE_NAMES)


@dataclass(frozen=True)
class FeatureScaling:
    """Per market feature: subtract ``mean``, divide by ``std`` (both from training rows)."""

    mean: FloatArray
    std: FloatArray

    @classmethod
    def fit(cls, rows: FloatArray) -> "FeatureScaling":
        mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        # A feature that never varied in training (sentiment on candle files without news)
        # taught the policy nothing: its weights are where initialisation left them. An
        # infinite scale makes it enter as 0 whatever its value now, so live news cannot
        # move the opinion through weights no training shaped.
        return cls(mean=mean, std=np.where(std > 0.0, std, np.inf))

    def scale(self, rows: FloatArray) -> FloatArray:
        scaled: FloatArray = (rows - self.mean) / self.std
        return scaled

    def to_json(self) -> dict[str, Any]:
        return {
            # std null: never varied in training, so not read (see ``fit``).
            name: {"mean": float(mean), "std": float(std) if np.isfinite(std) else None}
            for name, mean, std in zip(MARKET_FEATURES, self.mean, self.std, strict=True)
        }


def build_observation(
    market_row: FloatArray, position: float, unrealised_pnl: float, scaling: FeatureScaling
) -> Float32Array:
    """One observation (FEATURE_NAMES order) from a row of ``market_feature_rows``."""
    observation = np.empty(OBSERVATION_SIZE, dtype=np.float32)
    observation[: len(MARKET_FEATURES)] = scaling.scale(market_row)
    observation[-2] = position
    observation[-1] = unrealised_pnl
    return observation
