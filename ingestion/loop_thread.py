"""One asyncio event loop on a thread of its own, for async clients used from sync code.

An async ccxt client belongs to the loop it first ran on (its HTTP session and its rate
limiter live there), so the scheduler's worker threads hand their coroutines to this one
loop instead of each starting a loop of its own.
"""

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

Result = TypeVar("Result")


class LoopThread:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        """Run ``coroutine`` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self, last: Coroutine[Any, Any, None] | None = None) -> None:
        """Run ``last`` (a client's close), then stop the loop and its thread."""
        if not self._loop.is_running():
            if last is not None:
                last.close()  # never started: nothing to close on a stopped loop
            return
        if last is not None:
            self.run(last)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
