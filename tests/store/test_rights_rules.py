"""Every entry kind has exactly one rule, and docs/rights.md states it."""

from __future__ import annotations

import re
from pathlib import Path

from quotepart.log.kinds import DECLARED
from quotepart.store.rights import RULES, missing_rules

DOC = (Path(__file__).parents[2] / "docs" / "rights.md").read_text()


def test_every_declared_kind_has_a_rule() -> None:
    assert missing_rules() == []
    assert set(RULES) == set(DECLARED)


def test_the_written_rules_name_each_kind_with_the_rule_the_code_applies() -> None:
    rows = dict(re.findall(r"^\| `([a-z_.]+)` \| `([a-z-]+)` \|", DOC, flags=re.MULTILINE))
    assert rows == {kind: rule.name for kind, rule in RULES.items()}
