"""Response examples for the OpenAPI docs of records the lower layers define.

The decision example is a real record the simulated market produced (`decision_example.json`);
a test validates every example here against its model, so the docs cannot drift from the code.
"""

import json
from pathlib import Path
from typing import Any

DECISION_EXAMPLE: dict[str, Any] = json.loads(
    Path(__file__).with_name("decision_example.json").read_text()
)

DECISION_SUMMARY_EXAMPLE: dict[str, Any] = {
    "id": DECISION_EXAMPLE["id"],
    "seq": 1042,
    "symbol": DECISION_EXAMPLE["symbol"],
    "timeframe": DECISION_EXAMPLE["timeframe"],
    "as_of": 1764000000000,
    "action": DECISION_EXAMPLE["safety"]["action"],
    "size": DECISION_EXAMPLE["safety"]["size"],
    "confidence": DECISION_EXAMPLE["proposal"]["confidence"],
    "verdict": DECISION_EXAMPLE["safety"]["verdict"],
    "mode": DECISION_EXAMPLE["mode"],
}

DECISION_PAGE_EXAMPLE: dict[str, Any] = {"items": [DECISION_SUMMARY_EXAMPLE], "next_cursor": None}

CONTROL_STATE_EXAMPLE: dict[str, Any] = {
    "state": "PAUSED",
    "reason": "CPI print in 10 minutes",
    "actor": "api:3f9c1a2b7d4e:ops-desk",
    "since": 1764000000000,
    "symbol": None,
    "journal_seq": 17,
    "cool_down_until": None,
}

SAFETY_EVENT_PAGE_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "id": 88,
            "at": 1764000000000,
            "kind": "control_halted",
            "symbol": None,
            "decision_id": None,
            "detail": {
                "reason": "exchange incident",
                "actor": "api:3f9c1a2b7d4e:ops-desk",
                "journal_seq": 18,
                "cool_down_until": None,
            },
        }
    ],
    "next_cursor": None,
}

PANIC_REPORT_EXAMPLE: dict[str, Any] = {
    "already_halted": False,
    "halted_journal_seq": 18,
    "cancelled_order_ids": ["5d0e6c3e-7b1f-4d1a-9a51-0c8a7e2f4b10"],
    "close_out_order_ids": [],
    "steps": [
        {"name": "halt", "ok": True, "elapsed_ms": 3.1, "detail": "HALTED persisted: journal #18"},
        {
            "name": "cancel_orders",
            "ok": True,
            "elapsed_ms": 4.6,
            "detail": "1 open orders cancelled",
        },
        {"name": "record", "ok": True, "elapsed_ms": 6.0, "detail": "safety event #88"},
    ],
}

CONTROL_OVERVIEW_EXAMPLE: dict[str, Any] = {
    "global": CONTROL_STATE_EXAMPLE,
    "symbols": [
        {
            "state": "PAUSED",
            "reason": "circuit breaker: one candle moved 9.1% (limit 8.0%)",
            "actor": "trigger:circuit_breaker",
            "since": 1764000000000,
            "symbol": "ETH/USDT",
            "journal_seq": 12,
            "cool_down_until": 1764001800000,
        }
    ],
}

DEBATE_EXAMPLE: dict[str, Any] = {
    "decision_id": DECISION_EXAMPLE["id"],
    "symbol": DECISION_EXAMPLE["symbol"],
    "timeframe": DECISION_EXAMPLE["timeframe"],
    "as_of": DECISION_EXAMPLE["as_of"],
    "action": DECISION_EXAMPLE["safety"]["action"],
    "verdict": DECISION_EXAMPLE["signals"]["debate"],
    "turns": DECISION_EXAMPLE["debate"][:2],
}

DEBATE_PAGE_EXAMPLE: dict[str, Any] = {"items": [DEBATE_EXAMPLE], "next_cursor": "1041"}

POSITION_EXAMPLE: dict[str, Any] = {
    "symbol": "BTC/USDT",
    "timeframe": "5m",
    "quantity": 0.0105,
    "cost": 1001.2,
    "mark_price": 95710.5,
    "value": 1004.96,
    "unrealised_pnl": 3.76,
    "fraction": 0.1002,
}

PORTFOLIO_EXAMPLE: dict[str, Any] = {
    "as_of": "2026-11-24T12:00:00Z",
    "currencies": [
        {
            "quote": "USDT",
            "cash": 9000.0,
            "equity": 10004.96,
            "day_start_equity": 10000.0,
            "today_pnl": 4.96,
            "exposure_fraction": 0.1004,
        }
    ],
    "positions": [POSITION_EXAMPLE],
}

ORDER_PAGE_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "id": "5d0e6c3e-7b1f-4d1a-9a51-0c8a7e2f4b10",
            "client_order_id": "decision-6f2a9474-e636-45be-942a-0be59e389e92",
            "decision_id": "6f2a9474-e636-45be-942a-0be59e389e92",
            "broker": "paper",
            "symbol": "BTC/USDT",
            "timeframe": "5m",
            "side": "buy",
            "quantity": 0.0105,
            "reference_price": 95350.0,
            "reduce_only": False,
            "status": "filled",
            "reason": "filled at the next candle's open",
            "not_before": "2026-11-24T12:00:00Z",
            "created_at": "2026-11-24T12:00:00.012Z",
            "updated_at": "2026-11-24T12:05:00Z",
            "journal_seq": 31,
        }
    ],
    "next_cursor": None,
}
