"""The "your own data" tutorial runs as written: its python blocks, in order, in a fresh folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).parents[2] / "docs" / "tutorial-own-data.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(markdown: str) -> list[str]:
    return [match.group(1) for match in BLOCK.finditer(markdown)]


def test_the_tutorial_has_its_steps() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    code = "\n".join(python_blocks(text))
    for call in (
        "register_party",
        "register_data",
        "contribute",
        "track(",
        "register_service",
        "shapley(",
        "record_valuation",
        "set_policy",
        "record_revenue",
        "share(",
        "statement(",
        "verify_statement",
        "verify()",
    ):
        assert call in code, f"the tutorial's code no longer calls {call}"


def test_the_tutorial_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "tutorial"}
    blocks = python_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{TUTORIAL.name}, python block {number}", "exec")
        exec(code, namespace)
    assert (tmp_path / "wine-ledger" / "workspace.json").exists()
    assert (tmp_path / "moselle.json").exists()
