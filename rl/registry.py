"""The model registry: ``<home>/models/<id>/{model.zip, policy.npz, meta.json}`` and an
``active`` file naming the model the decision path uses.

A model folder is written complete under a temporary name and renamed into place, and the
``active`` pointer is replaced atomically, so a reader sees a whole model or none.
"""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.decision import Abstained
from core.timeframes import format_timestamp
from rl.policy import NumpyPolicy

MODEL_FILE, POLICY_FILE, META_FILE, ACTIVE_FILE = "model.zip", "policy.npz", "meta.json", "active"
# Under the settings' home.
MODELS_FOLDER = "models"
# What `sigmax rl list` shows of each model.
LISTED_KEYS = frozenset(
    {"id", "train_until", "timeframe", "series", "data_end", "timesteps", "seed"}
)


class RegistryError(ValueError):
    """A model that is absent, incomplete or already registered."""


@dataclass(frozen=True)
class ActiveModel:
    """The active model as the decision path holds it: the numpy actor and what it saw."""

    policy: NumpyPolicy
    timeframe: str
    data_end: int  # close time (epoch ms) of the newest candle it was trained or validated on

    def out_of_sample_reason(self, timeframe: str, as_of: int) -> str | None:
        """Why this model may give no opinion at ``as_of``, or None when it may (DESIGN §3)."""
        if timeframe != self.timeframe:
            return (
                f"model {self.policy.model_id} was trained on {self.timeframe} candles, "
                f"not {timeframe}"
            )
        if self.data_end >= as_of:
            return (
                f"model {self.policy.model_id} trained on data up to "
                f"{format_timestamp(self.data_end)}: no out-of-sample opinion at "
                f"{format_timestamp(as_of)}"
            )
        return None


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, model_id: str, files: dict[str, bytes], meta: dict[str, Any]) -> Path:
        """Store a model's files and metadata under its id; refuses an id already present."""
        target = self.root / model_id
        if target.exists():
            raise RegistryError(
                f"model {model_id} is already registered (same data, settings and seed): "
                f"activate it, or remove {target} to train it again"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{model_id}-", dir=self.root))
        for name, content in files.items():
            (staging / name).write_bytes(content)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        try:
            os.replace(staging, target)
        except OSError:  # the same model registered meanwhile by another process
            shutil.rmtree(staging, ignore_errors=True)
            raise RegistryError(f"model {model_id} was registered meanwhile: activate it") from None
        return target

    def models(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every registered model's metadata, oldest training cut first, and what could not
        be read (a folder and why), so one damaged model does not hide the others."""
        if not self.root.is_dir():
            return [], []
        metas: list[dict[str, Any]] = []
        unreadable: list[str] = []
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                meta = self.meta(folder.name)
                missing = LISTED_KEYS - set(meta)
                if missing:
                    raise RegistryError(f"{META_FILE} lacks {', '.join(sorted(missing))}")
            except (OSError, ValueError, TypeError) as error:  # RegistryError is a ValueError
                unreadable.append(f"{folder.name}: {error}")
                continue
            metas.append(meta)
        return sorted(metas, key=lambda meta: (meta["train_until"], meta["id"])), unreadable

    def meta(self, model_id: str) -> dict[str, Any]:
        path = self.root / model_id / META_FILE
        if not path.is_file():
            raise RegistryError(f"no model {model_id!r} in {self.root} (see `sigmax rl list`)")
        meta: dict[str, Any] = json.loads(path.read_text())
        return meta

    def activate(self, model_id: str) -> None:
        self.meta(model_id)  # refuses an unknown id
        if not (self.root / model_id / POLICY_FILE).is_file():
            raise RegistryError(f"model {model_id} has no {POLICY_FILE}: it cannot be used")
        staging = self.root / f".{ACTIVE_FILE}.tmp"
        staging.write_text(model_id + "\n")
        os.replace(staging, self.root / ACTIVE_FILE)

    def active_id(self) -> str | None:
        path = self.root / ACTIVE_FILE
        return path.read_text().strip() if path.is_file() else None

    def load_active(self) -> ActiveModel | Abstained:
        """The active model, or an abstention saying why there is none to use."""
        model_id = self.active_id()
        if model_id is None:
            # No path in the reason: it goes into the record, which must not depend on
            # where the home directory is.
            return Abstained(
                reason="no RL model active (train one: `sigmax rl train`, "
                "then `sigmax rl activate ID`)"
            )
        try:
            meta = self.meta(model_id)
            policy = NumpyPolicy.load(self.root / model_id / POLICY_FILE, model_id)
        except (RegistryError, OSError, KeyError, ValueError) as error:
            return Abstained(reason=f"active RL model {model_id} cannot be loaded: {error}")
        return ActiveModel(policy=policy, timeframe=meta["timeframe"], data_end=meta["data_end"])
