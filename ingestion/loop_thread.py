"""One asyncio event loop on a thread of its own, for async clients used from sync code.

An async ccxt client belongs to the loop it first ran on (its HTTP session and its rate
limiter live there), so the scheduler's worker threads hand their coroutines to this one
loop instead of each starting a loop of its own.
"""

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

Result = TypeVar("Result")


class LoopClosedError(RuntimeError):
    """The loop was closed before (or while) the work ran: it was cancelled, not done."""


class LoopThread:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._closing = threading.Lock()
        self._closed = False
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        """Run ``coroutine`` on the loop and wait for its result (or its exception)."""
        with self._closing:
            if self._closed:
                coroutine.close()
                raise LoopClosedError("the loop is closed")
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise LoopClosedError("cancelled: the loop was closed") from None

    def close(self, last: Coroutine[Any, Any, None] | None = None) -> None:
        """Cancel the work under way (its callers get LoopClosedError), run ``last`` (a
        client's close), then stop the loop and its thread. Later calls do nothing."""
        with self._closing:
            if self._closed:
                if last is not None:
                    last.close()
                return
            self._closed = True
        asyncio.run_coroutine_threadsafe(_finish(last), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _finish(last: Coroutine[Any, Any, None] | None) -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    if last is not None:
        await last
