"""The ccxt client an exchange broker trades through, and what its errors mean for an order.

Sandbox (testnet) unless told otherwise; real money only with ``live_trading`` on as well.
The keys go to the client and nowhere else: never logged, never in the config hash.
"""

import hashlib
import re
from typing import Any

import ccxt

from core.settings import BrokerSettings
from core.urls import rebased_urls

# Binance's rule for newClientOrderId (other exchanges accept at least as much).
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


class ExchangeConfigError(ValueError):
    """The broker settings do not allow trading on the exchange; the message says what to set."""


def trading_client(settings: BrokerSettings) -> Any:
    """A signed ccxt client for ``settings.exchange``, its rate limiter on, spot markets only."""
    if settings.kind != "exchange":
        raise ExchangeConfigError("broker.kind is 'paper': no exchange client is needed")
    if not settings.sandbox and not settings.live_trading:
        raise ExchangeConfigError(
            f"real-money trading on {settings.exchange} is not enabled: keep "
            "SIGMAX_BROKER__SANDBOX=true for the testnet, or set "
            "SIGMAX_BROKER__LIVE_TRADING=true to send real orders (the gate's live caps apply)"
        )
    if settings.api_key is None or settings.api_secret is None:
        raise ExchangeConfigError(
            f"the {settings.exchange} broker needs SIGMAX_BROKER__API_KEY and "
            "SIGMAX_BROKER__API_SECRET"
        )
    exchange_class = getattr(ccxt, settings.exchange, None)
    if exchange_class is None:
        raise ExchangeConfigError(f"ccxt knows no exchange {settings.exchange!r}")
    client = exchange_class(
        {
            "apiKey": settings.api_key.get_secret_value(),
            "secret": settings.api_secret.get_secret_value(),
            "enableRateLimit": True,
            "timeout": int(settings.timeout_seconds * 1000),
            # Spot only: no margin pairs or currency networks, which live on other APIs.
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    if settings.sandbox:
        try:
            client.set_sandbox_mode(True)
        except ccxt.NotSupported:
            raise ExchangeConfigError(
                f"{settings.exchange} has no sandbox in ccxt: trade it live (sandbox off, "
                "live_trading on) or choose another exchange"
            ) from None
    if settings.rest_base_url is not None:
        client.urls["api"] = rebased_urls(client.urls["api"], settings.rest_base_url)
    return client


def exchange_client_id(client_order_id: str) -> str:
    """The id the exchange knows the order by: ours when the exchange accepts it as it is,
    else a digest of it (the panic's ids are longer than Binance's 36 characters)."""
    if _CLIENT_ID.match(client_order_id):
        return client_order_id
    return "sgx-" + hashlib.sha256(client_order_id.encode()).hexdigest()[:32]


def rejection_reason(exchange: str, error: Exception) -> str:
    """What a definite refusal of an order means, in words, with the exchange's own message."""
    said = f"{type(error).__name__}: {str(error)[:300]}"
    if isinstance(error, ccxt.InsufficientFunds):
        return f"{exchange} refused it for insufficient funds ({said})"
    if isinstance(error, ccxt.OrderNotFound):
        return f"{exchange} does not know the order ({said})"
    if isinstance(error, ccxt.InvalidOrder | ccxt.BadRequest):
        return f"{exchange} refused it as invalid: size, precision or a minimum ({said})"
    if isinstance(error, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return f"{exchange} refused the API key ({said})"
    return f"{exchange} rejected it ({said})"
