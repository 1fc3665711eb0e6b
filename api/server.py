"""Run the service under uvicorn: the first admin key, the loopback rule, clean SIGTERM."""

import ipaddress
import logging
import math
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from api.app import create_app
from api.service import Service
from core.timeframes import now_ms
from storage.api_keys import ApiKeyStore

FIRST_KEY_LABEL = "created at first start"
GIL_SWITCH_INTERVAL_SECONDS = 0.001
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ServeError(Exception):
    """The service refuses to start as configured; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_api_key(keys: ApiKeyStore, host: str, say: Callable[[str], None]) -> None:
    """With no live key: on loopback, make an admin key and show it once; elsewhere, refuse."""
    if keys.active_count() > 0:
        return
    if not is_loopback(host):
        raise ServeError(
            f"refusing to listen on {host} with no API key: anyone who can reach it could "
            "trade and panic. Create one first with `sigmax keys create --scope admin`"
        )
    made = keys.create("admin", FIRST_KEY_LABEL, now_ms())
    say(
        f"No API key existed, so an admin key was created (id {made.key.id}).\n"
        f"It is shown this once; store it now:\n\n    {made.token}\n"
    )


class _Server(uvicorn.Server):
    """uvicorn, plus: on SIGTERM/SIGINT, end the event streams and the scheduler's loop at
    once, so open streams do not hold the graceful shutdown up."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._stopping.set()
        super().handle_exit(sig, frame)


def serve(service: Service, host: str, port: int) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        create_app(service),
        host=host,
        port=port,
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(service.settings.service.shutdown_grace_seconds),
        log_level="info",
        access_log=service.settings.api.access_log,
    )
    _Server(config, service.stopping).run()
