"""The decision record of DESIGN §4: immutable, stored once, the same bytes for the same inputs."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.evidence import Evidence, Speaker

Action = Literal["buy", "sell", "hold"]
Mode = Literal["sim", "replay", "live", "backtest"]
Verdict = Literal["approved", "reduced", "blocked"]
ControlStateName = Literal["ACTIVE", "PAUSED", "HALTED"]

# Fields that legitimately differ between two runs on the same inputs.
NONDETERMINISTIC_FIELDS = frozenset({"id", "created_at", "timings_ms"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelCall(_Frozen):
    """What a chat model did for one agent's turns: which model, on which prompt, at what cost,
    and whether its answer stands (``fallback`` False) or the rule agent spoke instead, and why.

    Tokens, latency and attempts are those of the call that first answered the prompt: a rerun
    served from the replay cache records the same figures, so the record stays byte-identical.
    """

    backend: str  # the spec, e.g. "openai:gpt-4o-mini"
    prompt_hash: str  # the replay cache's key: backend, tool schema and messages hashed
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    # True when the provider reported no usage and the tokens were counted from the text.
    tokens_estimated: bool
    latency_ms: float = Field(ge=0.0)
    attempts: int = Field(ge=0)  # 0: no request was sent (over budget, backend unavailable)
    fallback: bool
    reason: str | None = None  # why it fell back


class DebateTurn(_Frozen):
    """One turn of the debate, in order: opening arguments, rebuttals, context, the verdict;
    a "fallback" turn says that a model-backed agent's answer was not used, and why."""

    index: int
    round: int
    speaker: Speaker
    kind: Literal["argument", "rebuttal", "context", "verdict", "fallback"]
    claim: str
    evidence: tuple[Evidence, ...]
    strength: float = Field(ge=0.0, le=1.0)
    target: int | None = None
    # The chat model behind this turn; None for a turn of the rule agents.
    model: ModelCall | None = None


class Abstained(_Frozen):
    """A signal that gave no opinion, and why. Never replaced by a neutral default."""

    status: Literal["abstained"] = "abstained"
    reason: str


class DebateVerdict(_Frozen):
    status: Literal["value"] = "value"
    score: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    rounds_run: int
    stopped_early: bool
    bull_strength: float
    bear_strength: float


class RLOpinion(_Frozen):
    status: Literal["value"] = "value"
    action: Action
    probabilities: dict[str, float]
    confidence: float = Field(ge=0.0, le=1.0)
    model_id: str


class SentimentReading(_Frozen):
    status: Literal["value"] = "value"
    score: float = Field(ge=-1.0, le=1.0)
    item_count: int


DebateSignal = Annotated[DebateVerdict | Abstained, Field(discriminator="status")]
RLSignal = Annotated[RLOpinion | Abstained, Field(discriminator="status")]
SentimentSignal = Annotated[SentimentReading | Abstained, Field(discriminator="status")]


class Signals(_Frozen):
    debate: DebateSignal
    rl: RLSignal
    sentiment: SentimentSignal


class Proposal(_Frozen):
    """What fusion proposes before the gate: size is a fraction of equity."""

    action: Action
    size: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=-1.0, le=1.0)
    contributions: dict[str, float]
    reason: str


class SafetyCheck(_Frozen):
    name: str
    passed: bool
    detail: str


class SafetyReport(_Frozen):
    verdict: Verdict
    control_state: ControlStateName
    checks: tuple[SafetyCheck, ...]
    action: Action
    size: float = Field(ge=0.0, le=1.0)


class Execution(_Frozen):
    status: Literal["not_executed", "executed"]
    reason: str
    orders: tuple[dict[str, str | float], ...] = ()


class InputHashes(_Frozen):
    candles: str
    news: str
    research: str


class Decision(_Frozen):
    id: str
    symbol: str
    timeframe: str
    as_of: str
    created_at: str
    mode: Mode
    # The broker the decision's orders go to ("paper" unless an exchange broker is set up):
    # mode "live" says the data came from an exchange, this says where the money is.
    broker: str | None = None
    engine_version: str
    config_hash: str
    inputs: InputHashes
    evidence: tuple[Evidence, ...]
    proposal: Proposal
    signals: Signals
    debate: tuple[DebateTurn, ...]
    safety: SafetyReport
    execution: Execution
    timings_ms: dict[str, float]

    @property
    def action(self) -> Action:
        """The action that stands after the gate."""
        return self.safety.action

    def deterministic_json(self) -> str:
        """The record without id, creation time and timings: equal bytes for equal inputs."""
        return self.model_dump_json(exclude=set(NONDETERMINISTIC_FIELDS))
