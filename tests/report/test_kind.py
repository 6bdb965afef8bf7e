"""The `report.published` entry kind: round trip and strict validation."""

from __future__ import annotations

from typing import Any

import pytest

from quotepart.errors import InputError
from quotepart.ids import Digest, Period
from quotepart.log.kinds import CURRENT, ReportPublished, decode_body

HASHES = ("0" * 64, "a" * 64)


def _entry(pdf: bool = True) -> ReportPublished:
    return ReportPublished(
        asset=Digest.of_bytes(b"service"),
        period=Period.parse("2026-Q1"),
        json_digest=Digest.of_bytes(b"json"),
        html_digest=Digest.of_bytes(b"html"),
        pdf_digest=Digest.of_bytes(b"pdf") if pdf else None,
        allocations=HASHES,
    )


@pytest.mark.parametrize("pdf", [True, False])
def test_the_body_round_trips(pdf: bool) -> None:
    entry = _entry(pdf)
    body = entry.to_body()
    assert ("pdf" in body) is pdf
    assert decode_body("report.published", 1, body) == entry
    assert CURRENT["report.published"] is ReportPublished


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unexpected field"),
        ({"allocations": []}, "at least one allocation"),
        ({"allocations": list(reversed(HASHES))}, "sorted list"),
        ({"allocations": ["xyz"]}, "sorted list"),
        ({"json": "sha256:1234"}, "not a digest"),
        ({"period": "2026-Q9"}, "not a period"),
        ({"html": None}, "html"),
    ],
)
def test_malformed_bodies_are_refused(change: dict[str, Any], message: str) -> None:
    body = {**_entry().to_body(), **change}
    with pytest.raises(InputError, match=message):
        ReportPublished.from_body(body)
