"""The README's curl examples, run as written against `sigmax serve` on a fresh home.

Two substitutions only: the port (a free one instead of 8000) and the key placeholder (the
key the server printed at its first start).
"""

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from server_helpers import TOKEN, running_server

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- curl-examples"
SEPARATOR = "=====next-command====="


def curl_block() -> list[str]:
    text = README.read_text()
    start = text.index("```bash", text.index(MARKER)) + len("```bash")
    block = text[start : text.index("```", start)]
    return [line for line in block.strip().splitlines() if line.strip()]


def test_the_readme_curl_examples_work_as_written(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    lines = curl_block()
    assert lines[0].startswith("export SIGMAX_KEY=")
    with running_server(tmp_path) as server:
        match = TOKEN.search(server.output)
        assert match, server.output
        key = match.group(0)
        port = server.base_url.split(":")[2].split("/")[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the scheduler's first decisions, as a reader waits
            health = httpx.get(
                f"{server.base_url}/health", headers={"Authorization": f"Bearer {key}"}
            ).json()
            if (health["components"]["scheduler"] or {}).get("decisions", 0) >= 2:
                break
            time.sleep(0.2)
        script = [f"export SIGMAX_KEY={key}"]
        for line in lines[1:]:
            script.append(line.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
            if line.startswith("curl"):
                script.append(f"echo; echo {SEPARATOR}")
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        server.stop_cleanly()
    outputs = [part.strip() for part in result.stdout.split(SEPARATOR)][:-1]
    assert len(outputs) == 8, result.stdout + result.stderr
    ping, health, decided, listed, debates, stream, panic, resume = outputs
    assert json.loads(ping) == {"ping": "pong"}
    assert json.loads(health)["components"]["database"]["ok"] is True
    decision = json.loads(decided)
    assert decision["symbol"] == "BTC/USDT"
    assert decision["id"] in {item["id"] for item in json.loads(listed)["items"]}
    assert json.loads(debates)["items"][0]["symbol"] == "BTC/USDT"
    assert ": connected" in stream
    assert json.loads(panic)["steps"][0]["name"] == "halt"
    assert json.loads(resume)["state"] == "ACTIVE"
