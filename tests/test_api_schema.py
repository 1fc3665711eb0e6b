"""The OpenAPI document against the app: schemathesis generates requests from it (a bounded
number per operation) and every response must be no server error and conform to the schema
— status code, content type and body. The examples in the docs must be valid records."""

import re
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import BaseModel, TypeAdapter
from schemathesis import checks

from api.app import create_app
from api.examples import (
    CONTROL_OVERVIEW_EXAMPLE,
    CONTROL_STATE_EXAMPLE,
    DEBATE_EXAMPLE,
    DEBATE_PAGE_EXAMPLE,
    DECISION_EXAMPLE,
    DECISION_PAGE_EXAMPLE,
    ORDER_PAGE_EXAMPLE,
    PANIC_REPORT_EXAMPLE,
    PORTFOLIO_EXAMPLE,
    POSITION_EXAMPLE,
    SAFETY_EVENT_PAGE_EXAMPLE,
)
from api.schemas import ControlOverview, DebateView, Order, Page, Portfolio, Position
from api.service import build_service
from core.decision import Decision
from core.settings import Settings
from core.timeframes import now_ms
from ingestion.feeds import Series, SimulatedFeed
from ingestion.sim_feed import extend_simulation
from safety.control import PanicReport
from storage.api_keys import VERIFIED_FOR_SECONDS, ApiKeyStore
from storage.candles import CandleStore
from storage.control import ControlState
from storage.decisions import DecisionSummary
from storage.engine import open_database
from storage.safety_events import SafetyEvent

EXAMPLES_PER_OPERATION = 25
# The event stream never ends by itself; tests/test_api_service.py reads it.
EXCLUDED_PATH = "/api/v1/stream"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _app_and_token(home: Path) -> tuple[Any, str]:
    settings = Settings(home=home, symbols=("BTC/USDT",))
    database = open_database(settings.resolved_database_url)
    store = CandleStore(database.session_factory)
    extend_simulation(store, "BTC/USDT", "5m", now_ms(), 300, settings.seed)
    feed = SimulatedFeed(store, (Series("BTC/USDT", "5m"),), settings.lookback_bars, settings.seed)
    service = build_service(settings, database, feed, run_scheduler=False)
    service.engine.decide("BTC/USDT", "5m", now_ms())
    token = ApiKeyStore(database).create("admin", "schemathesis", now_ms()).token
    return create_app(service), token


_HOME = Path(__import__("tempfile").mkdtemp(prefix="sigmax-schema-"))
APP, TOKEN = _app_and_token(_HOME)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path=EXCLUDED_PATH)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_responses_conform_to_the_openapi_document(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@pytest.mark.parametrize(
    ("example", "model"),
    [
        (DECISION_EXAMPLE, Decision),
        (DECISION_PAGE_EXAMPLE, Page[DecisionSummary]),
        (CONTROL_STATE_EXAMPLE, ControlState),
        (SAFETY_EVENT_PAGE_EXAMPLE, Page[SafetyEvent]),
        (PANIC_REPORT_EXAMPLE, PanicReport),
        (CONTROL_OVERVIEW_EXAMPLE, ControlOverview),
        (DEBATE_EXAMPLE, DebateView),
        (DEBATE_PAGE_EXAMPLE, Page[DebateView]),
        (POSITION_EXAMPLE, Position),
        (PORTFOLIO_EXAMPLE, Portfolio),
        (ORDER_PAGE_EXAMPLE, Page[Order]),
    ],
)
def test_the_documented_examples_are_valid_records(
    example: dict[str, Any], model: type[BaseModel]
) -> None:
    TypeAdapter(model).validate_python(example)


def test_every_operation_is_described_with_an_example_of_its_answer() -> None:
    document = APP.openapi()
    components = document["components"]["schemas"]

    def has_example(media: dict[str, Any]) -> bool:
        if "example" in media or "examples" in media:
            return True
        reference = media.get("schema", {}).get("$ref", "")
        return "examples" in components.get(reference.rsplit("/", 1)[-1], {})

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("description"), where
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert len(success) == 1, where
            content = operation["responses"][success[0]]["content"]
            assert content, where
            assert all(has_example(media) for media in content.values()), where
            if path != "/api/v1/ping":
                assert "401" in operation["responses"], where


def test_the_docs_page_needs_nothing_from_the_internet() -> None:
    with TestClient(APP) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources, page.text
        assert all(source.startswith("/docs-assets/") for source in sources), sources
        assert "https://" not in page.text
        for source in sources:
            asset = client.get(source)
            assert asset.status_code == 200, source
            assert asset.content, source
        assert client.get("/openapi.json").json()["info"]["title"] == "SIGMAX"


def test_an_unexpected_failure_answers_500_in_the_error_shape_without_a_trace(
    tmp_path: Path,
) -> None:
    app, token = _app_and_token(tmp_path)
    service = app.state.service
    decision_id = service.decisions.list(limit=1)[0].id
    with service.database.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE decision_records SET record = '{\"broken\": '")
    with TestClient(app, raise_server_exceptions=False) as client:
        failed = client.get(
            f"/api/v1/decisions/{decision_id}", headers={"Authorization": f"Bearer {token}"}
        )
    assert failed.status_code == 500
    body = failed.json()
    assert body["error"]["code"] == "internal_error"
    assert "the server log has it as" in body["error"]["message"]
    assert "Traceback" not in failed.text
    assert "broken" not in failed.text


def test_a_database_that_stops_answering_gives_503_not_500(tmp_path: Path) -> None:
    app, token = _app_and_token(tmp_path)
    service = app.state.service
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/health", headers=headers).status_code == 200
        service.database.engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"sigmax.db{suffix}").unlink(missing_ok=True)
        (tmp_path / "sigmax.db").mkdir()  # the file is gone and cannot come back
        health = client.get("/api/v1/health", headers=headers)  # the key is still trusted
        assert health.status_code == 503
        assert health.json()["status"] == "failing"
        time.sleep(VERIFIED_FOR_SECONDS + 0.2)  # now the key check itself needs the database
        for path in ("/api/v1/health", "/api/v1/decisions"):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 503, path
            assert answer.json()["error"]["code"] == "database_unavailable"
