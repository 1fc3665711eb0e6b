"""Settings: read once from SIGMAX_* environment variables at start-up, then passed down.

No other module reads the environment.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.timeframes import timeframe_ms

RiskProfileName = Literal["conservative", "balanced", "aggressive"]


def _split_commas(value: Any) -> Any:
    """Accept 'BTC/USDT,ETH/USDT' from the environment as well as a list."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A list setting, written in the environment as comma-separated text.
CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]

# The debate may be configured to fewer rounds, never to more than this.
MAX_DEBATE_ROUNDS = 6


class RiskLimits(BaseModel):
    """The numbers a risk profile sets for the gate, the auto-pause triggers and sizing."""

    model_config = ConfigDict(frozen=True)

    min_confidence: float = Field(ge=0.0, le=1.0)
    entry_threshold: float = Field(gt=0.0, le=1.0)
    # Position and exposure as fractions of the quote currency's equity.
    max_position_fraction: float = Field(gt=0.0, le=1.0)
    max_total_exposure_fraction: float = Field(gt=0.0, le=1.0)
    max_missing_bars: int = Field(ge=0)
    freshness_bars: float = Field(gt=0.0)
    # Realised plus unrealised loss since 00:00 UTC, as a fraction of that day's opening equity.
    daily_loss_limit_fraction: float = Field(gt=0.0, le=1.0)
    max_consecutive_losses: int = Field(ge=1)
    # More than this many API errors within the error window pauses trading.
    api_error_burst: int = Field(ge=1)
    sentiment_floor: float = Field(ge=-1.0, le=1.0)
    sentiment_max_drop_per_hour: float = Field(gt=0.0)
    # One closed candle moving more than either bound trips the symbol's circuit breaker.
    circuit_breaker_atr_multiple: float = Field(gt=0.0)
    circuit_breaker_move_fraction: float = Field(gt=0.0)
    # A fill this far from the decision's reference price pauses trading.
    max_slippage_fraction: float = Field(gt=0.0)
    cool_down_minutes: int = Field(ge=0)


RISK_PROFILES: dict[RiskProfileName, RiskLimits] = {
    "conservative": RiskLimits(
        min_confidence=0.45,
        entry_threshold=0.30,
        max_position_fraction=0.05,
        max_total_exposure_fraction=0.20,
        max_missing_bars=0,
        freshness_bars=1.0,
        daily_loss_limit_fraction=0.02,
        max_consecutive_losses=3,
        api_error_burst=5,
        sentiment_floor=-0.5,
        sentiment_max_drop_per_hour=0.5,
        circuit_breaker_atr_multiple=4.0,
        circuit_breaker_move_fraction=0.05,
        max_slippage_fraction=0.005,
        cool_down_minutes=60,
    ),
    "balanced": RiskLimits(
        min_confidence=0.30,
        entry_threshold=0.20,
        max_position_fraction=0.10,
        max_total_exposure_fraction=0.40,
        max_missing_bars=1,
        freshness_bars=1.0,
        daily_loss_limit_fraction=0.04,
        max_consecutive_losses=3,
        api_error_burst=10,
        sentiment_floor=-0.6,
        sentiment_max_drop_per_hour=0.6,
        circuit_breaker_atr_multiple=5.0,
        circuit_breaker_move_fraction=0.08,
        max_slippage_fraction=0.01,
        cool_down_minutes=30,
    ),
    "aggressive": RiskLimits(
        min_confidence=0.20,
        entry_threshold=0.12,
        max_position_fraction=0.25,
        max_total_exposure_fraction=0.80,
        max_missing_bars=3,
        freshness_bars=1.0,
        daily_loss_limit_fraction=0.08,
        max_consecutive_losses=3,
        api_error_burst=20,
        sentiment_floor=-0.75,
        sentiment_max_drop_per_hour=0.8,
        circuit_breaker_atr_multiple=6.0,
        circuit_breaker_move_fraction=0.12,
        max_slippage_fraction=0.02,
        cool_down_minutes=15,
    ),
}


class SafetySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    # After an auto-pause's cool-down: resume by itself, or wait for a person.
    auto_resume: bool = False
    api_error_window_seconds: int = Field(default=60, gt=0)
    # Phase-1 caps on real-money orders, in the quote currency (live mode only).
    live_max_order_notional: float = Field(default=10.0, gt=0.0)
    live_max_daily_notional: float = Field(default=50.0, gt=0.0)


class PaperSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Opening cash per quote currency; a symbol quoted in anything else cannot be paper-traded.
    starting_balances: dict[str, float] = Field(
        default_factory=lambda: {"USDT": 10_000.0, "BTC": 0.5, "ETH": 10.0}
    )
    taker_fee: float = Field(default=0.001, ge=0.0, lt=0.1)
    # Half-spread paid on every fill, plus market impact growing with the order's share of
    # the fill candle's traded value.
    spread_fraction: float = Field(default=0.0002, ge=0.0, lt=0.1)
    impact_coefficient: float = Field(default=0.1, ge=0.0)


class BrokerSettings(BaseModel):
    """Which broker the orders go to: paper (the default) or an exchange through ccxt.

    The exchange's sandbox (testnet) is the default; real-money orders go out only with
    ``sandbox`` off AND ``live_trading`` on. The keys are secrets: never logged, never in the
    config hash, read from the environment (SIGMAX_BROKER__API_KEY, ...__API_SECRET) here only.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["paper", "exchange"] = "paper"
    exchange: str = "binance"
    sandbox: bool = True
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    # Every REST URL of the exchange rebased here (a proxy, a test server).
    rest_base_url: str | None = None
    live_trading: bool = False
    # market: fills at once at the book; limit: rests at the decision's reference price.
    order_type: Literal["market", "limit"] = "market"
    timeout_seconds: float = Field(default=10.0, gt=0.0, le=120.0)
    # Sends of one order when the answer is lost; each is preceded by a look-up by client id.
    send_attempts: int = Field(default=3, ge=1, le=10)

    @property
    def real_money(self) -> bool:
        return self.kind == "exchange" and not self.sandbox

    def decision_fields(self) -> dict[str, Any]:
        """What changes a decision (the live caps apply to real money); no secret, no URL."""
        return {"kind": self.kind, "exchange": self.exchange, "sandbox": self.sandbox}


class DebateSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    rounds: int = Field(default=2, ge=0, le=MAX_DEBATE_ROUNDS)
    # The debate stops before `rounds` once the judged score moves less than this.
    early_stop_delta: float = Field(default=0.01, ge=0.0)
    # How much a rebuttal of full strength takes off the argument it answers.
    rebuttal_weight: float = Field(default=0.5, ge=0.0, le=1.0)


class FusionWeights(BaseModel):
    model_config = ConfigDict(frozen=True)

    debate: float = Field(default=1.0, ge=0.0)
    rl: float = Field(default=0.5, ge=0.0)
    sentiment: float = Field(default=0.3, ge=0.0)


class ApiSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Per key, for POST /decisions, pause and resume (never for panic): a steady rate and
    # the burst allowed on top of it.
    mutations_per_minute: float = Field(default=60.0, gt=0.0)
    mutation_burst: int = Field(default=10, ge=1)
    # One log line per request. Off by default: at hundreds of requests a second it costs a
    # fifth of the throughput (bench/api.py), and a reverse proxy usually logs them anyway.
    access_log: bool = False


class ServiceSettings(BaseModel):
    """The live service's scheduler and event stream."""

    model_config = ConfigDict(frozen=True)

    # Market seconds per wall-clock second: 1 is real time; the simulated market may run
    # faster, a replay usually does (300: one 5m candle per second).
    sim_speed: float = Field(default=1.0, gt=0.0, le=100_000.0)
    replay_speed: float = Field(default=300.0, gt=0.0, le=100_000.0)
    # How often the event stream looks for new decisions, safety events and control changes.
    stream_poll_ms: int = Field(default=250, ge=10, le=10_000)
    # On SIGTERM, how long the decision in flight may take to finish.
    shutdown_grace_seconds: float = Field(default=30.0, gt=0.0)


DEFAULT_NEWS_FEEDS = (
    "https://www.coindesk.com/arc/outboundfeeds/rss/",
    "https://cointelegraph.com/rss",
    "https://decrypt.co/feed",
)


class NewsSettings(BaseModel):
    """RSS/Atom feeds of crypto news, polled for the sentiment signal."""

    model_config = ConfigDict(frozen=True)

    feeds: CommaSeparated = DEFAULT_NEWS_FEEDS
    poll_seconds: int = Field(default=300, ge=10)
    timeout_seconds: float = Field(default=10.0, gt=0.0, le=120.0)

    @field_validator("feeds")
    @classmethod
    def _check_feeds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"feed {url!r} must be an http:// or https:// URL")
        return value


class ResearchSettings(BaseModel):
    """Public research APIs; each URL can point elsewhere (a mirror, a proxy, a test)."""

    model_config = ConfigDict(frozen=True)

    fear_greed_url: str = "https://api.alternative.me/fng/?limit=1"
    coingecko_url: str = "https://api.coingecko.com/api/v3"
    reddit_url: str = "https://www.reddit.com"
    cryptopanic_url: str = "https://cryptopanic.com/api/v1/posts/"
    # CryptoPanic is asked only with a token (its API requires one).
    cryptopanic_token: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0.0, le=120.0)


class BookSettings(BaseModel):
    """Order books: how they are summarised for the agents and how old a summary may be."""

    model_config = ConfigDict(frozen=True)

    # A decision cites a book summary taken at most this long before as_of, else none.
    staleness_seconds: int = Field(default=120, gt=0)
    # Depth imbalance counts the levels within this fraction of the mid price (0.01 = ±1%).
    band_fraction: float = Field(default=0.01, gt=0.0, le=0.5)
    # Levels asked for in a REST depth snapshot (Binance accepts 5 to 5000).
    snapshot_levels: int = Field(default=100, ge=5, le=5000)
    # How often the service takes a snapshot and a ticker of each symbol.
    poll_seconds: int = Field(default=30, ge=1)


class RLSettings(BaseModel):
    """PPO training (stable-baselines3), the trading env's rules and the walk-forward run."""

    model_config = ConfigDict(frozen=True)

    learning_rate: float = Field(default=3e-4, gt=0.0)
    n_steps: int = Field(default=2048, ge=8)
    batch_size: int = Field(default=64, ge=2)
    gamma: float = Field(default=0.99, gt=0.0, le=1.0)
    # The newest share of the data before --train-until, held out to judge the model.
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    # An episode ends when the portfolio falls this far below its peak.
    max_drawdown: float = Field(default=0.25, gt=0.0, le=1.0)
    # Subtracted from the reward per trade, on top of the fees and slippage it already pays:
    # discourages churning on noise.
    trade_penalty: float = Field(default=0.0005, ge=0.0)
    # Walk-forward: the candle files' folder, windows per file, PPO steps per window.
    data_dir: Path = Path("../shared/data")
    walk_forward_windows: int = Field(default=4, ge=2)
    walk_forward_timesteps: int = Field(default=20_000, ge=1)


ModelRole = Literal["bull", "bear", "researcher", "judge"]
MODEL_ROLES: tuple[ModelRole, ...] = ("bull", "bear", "researcher", "judge")
RULES_BACKEND = "rules"
MODEL_PROVIDERS = ("openai", "anthropic", "ollama")


def _check_backend(value: str) -> str:
    provider, sep, model = value.partition(":")
    if value == RULES_BACKEND or (sep and provider in MODEL_PROVIDERS and model.strip()):
        return value
    raise ValueError(
        f"backend {value!r} must be {RULES_BACKEND!r} or provider:model with provider one of "
        f"{', '.join(MODEL_PROVIDERS)} (e.g. openai:gpt-4o-mini, ollama:llama3.1)"
    )


BackendSpec = Annotated[str, AfterValidator(_check_backend)]


_LLM_NOT_DECIDING = frozenset(
    {"timeout_seconds", "openai_api_key", "openai_base_url", "anthropic_api_key", "ollama_base_url"}
)


class LLMSettings(BaseModel):
    """Which agents a chat model speaks for (the rules by default), and the model's limits.

    The safety gate has no backend: it is never model-backed. The keys are secrets: never
    logged, never in the config hash, read from the environment (SIGMAX_LLM__OPENAI_API_KEY,
    SIGMAX_LLM__ANTHROPIC_API_KEY) here only — the provider packages are not left to read it.
    """

    # extra="forbid": SIGMAX_LLM__GATE is refused by name, not silently ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")

    bull: BackendSpec = RULES_BACKEND
    bear: BackendSpec = RULES_BACKEND
    researcher: BackendSpec = RULES_BACKEND
    judge: BackendSpec = RULES_BACKEND
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    # Per attempt; a call that times out is not tried again (it already cost the wait).
    timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    # Further attempts after an error or an answer that does not fit the schema.
    retries: int = Field(default=1, ge=0, le=3)
    # The longest answer asked for (the provider's max_tokens): with the prompt's own size,
    # what each attempt is checked against the budgets before it is sent.
    max_answer_tokens: int = Field(default=1_000, ge=50, le=16_000)
    # Tokens (prompt + answer) one decision may use, replayed answers included, and the
    # tokens fresh calls may spend per UTC day; past either the rule agents speak.
    decision_token_budget: int = Field(default=20_000, ge=0)
    daily_token_budget: int = Field(default=1_000_000, ge=0)
    # News reaches the researcher's model as quoted data: this many newest items, each
    # headline cut to this many characters.
    news_items: int = Field(default=20, ge=0, le=200)
    news_title_chars: int = Field(default=200, ge=20, le=2000)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    ollama_base_url: str = "http://127.0.0.1:11434"

    def backend(self, role: ModelRole) -> str:
        spec: str = getattr(self, role)
        return spec

    def model_backed(self) -> tuple[ModelRole, ...]:
        return tuple(role for role in MODEL_ROLES if self.backend(role) != RULES_BACKEND)

    def decision_fields(self) -> dict[str, Any]:
        """What changes a decision: the backends and what bounds their answers; no key, URL
        or timeout (a timeout changes only whether an answer comes, which the record says)."""
        return self.model_dump(exclude=set(_LLM_NOT_DECIDING))

    def secrets(self) -> tuple[str, ...]:
        """The key values, to be blanked out of any error text before it is recorded."""
        keys = (self.openai_api_key, self.anthropic_api_key)
        # An empty key is no secret: blanking "" would mangle every character of the text.
        return tuple(key.get_secret_value() for key in keys if key and key.get_secret_value())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SIGMAX_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    home: Path = Path("var")
    database_url: str | None = None
    symbols: CommaSeparated = ("BTC/USDT", "ETH/USDT")
    timeframes: CommaSeparated = ("5m",)
    risk_profile: RiskProfileName = "balanced"
    seed: int = 42
    # Closed candles handed to the indicators; enough for MACD's slow EMA to settle.
    lookback_bars: int = Field(default=250, ge=60, le=5000)
    debate: DebateSettings = DebateSettings()
    fusion: FusionWeights = FusionWeights()
    safety: SafetySettings = SafetySettings()
    paper: PaperSettings = PaperSettings()
    api: ApiSettings = ApiSettings()
    service: ServiceSettings = ServiceSettings()
    news: NewsSettings = NewsSettings()
    research: ResearchSettings = ResearchSettings()
    broker: BrokerSettings = BrokerSettings()
    book: BookSettings = BookSettings()
    rl: RLSettings = RLSettings()
    llm: LLMSettings = LLMSettings()

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            validate_symbol(symbol)
        return value

    @field_validator("timeframes")
    @classmethod
    def _check_timeframes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for timeframe in value:
            timeframe_ms(timeframe)
        return value

    @model_validator(mode="after")
    def _need_symbols(self) -> "Settings":
        if not self.symbols or not self.timeframes:
            raise ValueError("at least one symbol and one timeframe must be configured")
        return self

    @property
    def limits(self) -> RiskLimits:
        return RISK_PROFILES[self.risk_profile]

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded default: a SQLite file under the home directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'sigmax.db').resolve()}"

    def decision_config(self) -> dict[str, Any]:
        """Everything that changes what a decision says; its hash is stamped on each decision."""
        return {
            "risk_profile": self.risk_profile,
            "limits": self.limits.model_dump(),
            "lookback_bars": self.lookback_bars,
            "debate": self.debate.model_dump(),
            "fusion": self.fusion.model_dump(),
            "safety": self.safety.model_dump(),
            "paper": self.paper.model_dump(),
            "broker": self.broker.decision_fields(),
            "seed": self.seed,
            "book": {
                "staleness_seconds": self.book.staleness_seconds,
                "band_fraction": self.book.band_fraction,
            },
            "llm": self.llm.decision_fields(),
        }


def validate_symbol(symbol: str) -> str:
    """A symbol is BASE/QUOTE in capitals, e.g. BTC/USDT."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base.isalnum() or not quote.isalnum() or symbol != symbol.upper():
        raise ValueError(f"symbol {symbol!r} must look like BTC/USDT (BASE/QUOTE, capitals)")
    return symbol
