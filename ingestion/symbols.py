"""Configured symbols checked against what the exchange lists: no whitelist of our own.

The exchange's markets are loaded once (ccxt keeps them on the client); a symbol it does not
list is refused with ccxt's BadSymbol wording before anything is fetched or decided.
"""

from collections.abc import Iterable
from typing import Any

import ccxt

from ingestion.feeds import FeedError


def check_listed(exchange: Any, symbols: Iterable[str]) -> None:
    """Raise FeedError naming every symbol ``exchange`` does not list (or why it could not
    say: its markets did not load)."""
    try:
        markets = exchange.load_markets()
    except ccxt.BaseError as error:
        raise FeedError(
            f"{exchange.id}: markets did not load: {type(error).__name__}: {str(error)[:300]}"
        ) from None
    unknown = [symbol for symbol in symbols if symbol not in markets]
    if unknown:
        raise FeedError(
            f"BadSymbol: {exchange.id} does not have market symbol {', '.join(unknown)}"
        )
