"""The trained actor as plain numpy: the in-path inference, tens of microseconds per call.

SB3's MlpPolicy actor is a stack of Linear layers with Tanh between them and a final Linear
to one logit per action; its action distribution is the softmax of those logits. The
weights are exported once (``policy.npz``) and evaluated here in float64, so the decision
path needs no torch and no SB3 call.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from core.candles import FloatArray
from core.decision import Action, RLOpinion
from rl.env import ACTIONS
from rl.observation import FeatureScaling, Float32Array

_MARKET_KEYS = ("scaling_mean", "scaling_std")


class PolicyReading(NamedTuple):
    """The policy's opinion as numbers (RLOpinion without the model id)."""

    action: Action
    probabilities: dict[str, float]
    confidence: float


@dataclass(frozen=True)
class NumpyPolicy:
    """Actor weights (hidden layers then the action layer) and the model's feature scaling."""

    model_id: str
    weights: tuple[FloatArray, ...]
    biases: tuple[FloatArray, ...]
    scaling: FeatureScaling

    def probabilities(self, observation: Float32Array) -> FloatArray:
        return np.array(self._probabilities(observation))

    def _probabilities(self, observation: Float32Array) -> list[float]:
        # In-place numpy for the hidden layers; the three logits' softmax in plain floats,
        # where numpy's per-call overhead would cost more than the arithmetic.
        hidden = observation.astype(np.float64)
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            hidden = weight @ hidden
            hidden += bias
            np.tanh(hidden, out=hidden)
        logits: list[float] = (self.weights[-1] @ hidden + self.biases[-1]).tolist()
        top = max(logits)
        exps = [math.exp(logit - top) for logit in logits]
        total = math.fsum(exps)
        return [value / total for value in exps]

    def reading(self, observation: Float32Array) -> PolicyReading:
        """The most probable action; confidence is how far its probability stands above a
        uniform guess (1/3 → 0, certain → 1)."""
        probabilities = self._probabilities(observation)
        best = max(range(len(ACTIONS)), key=probabilities.__getitem__)
        uniform = 1.0 / len(ACTIONS)
        confidence = (probabilities[best] - uniform) / (1.0 - uniform)
        return PolicyReading(
            ACTIONS[best],
            dict(zip(ACTIONS, probabilities, strict=True)),
            min(1.0, max(0.0, confidence)),
        )

    def opinion(self, observation: Float32Array) -> RLOpinion:
        """The reading as the decision record holds it, with the model's id."""
        action, probabilities, confidence = self.reading(observation)
        return RLOpinion(
            action=action,
            probabilities=probabilities,
            confidence=confidence,
            model_id=self.model_id,
        )

    def write(self, handle: BinaryIO) -> None:
        arrays: dict[str, Any] = {f"weight_{i}": weight for i, weight in enumerate(self.weights)}
        arrays |= {f"bias_{i}": bias for i, bias in enumerate(self.biases)}
        arrays |= dict(zip(_MARKET_KEYS, (self.scaling.mean, self.scaling.std), strict=True))
        np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: Path, model_id: str) -> "NumpyPolicy":
        with np.load(path) as data:
            layers = sum(1 for name in data.files if name.startswith("weight_"))
            return cls(
                model_id=model_id,
                weights=tuple(np.array(data[f"weight_{i}"]) for i in range(layers)),
                biases=tuple(np.array(data[f"bias_{i}"]) for i in range(layers)),
                scaling=FeatureScaling(
                    mean=np.array(data["scaling_mean"]), std=np.array(data["scaling_std"])
                ),
            )
