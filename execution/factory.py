"""The broker the settings ask for: paper by default, or an exchange through ccxt."""

from core.settings import Settings
from execution.broker import BookKeepingBroker
from execution.exchange import ExchangeBroker
from execution.paper import PaperBroker
from storage.engine import Database


def build_broker(settings: Settings, database: Database) -> BookKeepingBroker:
    """Raises ExchangeConfigError (its message says what to set) when the exchange broker is
    asked for and cannot trade: real money not enabled, keys missing, exchange unknown."""
    if settings.broker.kind == "exchange":
        return ExchangeBroker(database, settings)
    return PaperBroker(database, settings.paper)
