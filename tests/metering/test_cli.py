"""`quotepart service add`, `meter add|list|rotate-key` and `usage ingest`, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.workspace import init_workspace
from tests.conftest import FakeClock
from tests.metering.test_ingest import event


def run(folder: Path, *args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--workspace", str(folder)], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_a_user_defines_a_meter_and_ingests_a_file_with_bad_events(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    with init_workspace(folder, clock=FakeClock()) as ws:
        operator = ws.register_party("Operator", roles=["operator"])
        ws.register_asset(b"weights", asset_kind="model", name="M", by=operator)
    code, out, _ = run(
        folder, "service", "add", "LLM API", "--endpoint", "https://api.example/v1",
        "--model", "M", "--by", "Operator",
    )  # fmt: skip
    assert code == 0
    assert "service LLM API registered" in out
    code, out, _ = run(
        folder, "meter", "add", "LLM API", "tokens", "--event-type", "llm.completion",
        "--aggregation", "sum", "--value-path", "$.data.tokens",
    )  # fmt: skip
    assert code == 0, out
    code, out, _ = run(folder, "meter", "list", "LLM API", "--json")
    assert orjson.loads(out)[0]["value_path"] == "$.data.tokens"
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"\n".join([orjson.dumps(event(1)), b"{broken", orjson.dumps(event(2, tokens="x"))])
    )
    rejects = tmp_path / "rejects.jsonl"
    code, out, err = run(folder, "usage", "ingest", str(events), "--reject", str(rejects))
    assert code == 1  # some were rejected
    assert "1 recorded in 1 batch(es), 2 rejected" in out
    assert "rejected event 2: not valid JSON" in err
    assert "rejected event 3:" in err
    lines = rejects.read_bytes().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(b"{broken")
    code, out, _ = run(folder, "usage", "ingest", "-", "--json", input=orjson.dumps(event(1)))
    assert code == 0
    assert orjson.loads(out)["duplicates"] == 1
    code, out, _ = run(folder, "meter", "rotate-key")
    assert code == 0
    assert "epoch 2" in out
    code, out, _ = run(folder, "verify")
    assert code == 0
    assert "1 usage batches recomputed from 1 events" in out


def test_a_missing_file_and_an_unknown_service_are_clear_errors(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    init_workspace(folder, clock=FakeClock()).close()
    code, _, err = run(folder, "usage", "ingest", str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert "nope.jsonl" in err
    code, _, err = run(folder, "meter", "list", "No such service")
    assert code != 0
    assert "Traceback" not in err
