"""Identifiers: time-ordered party and run ids (ULID) and content digests.

ULIDs sort by creation time, which keeps B-tree inserts local (random UUID keys
make SQLite 4-5x slower, see DEPENDENCIES.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from quotepart.errors import InputError

Clock = Callable[[], datetime]

_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


def utc_now() -> datetime:
    """The default clock; pass another `Clock` in tests."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and a `Z`: one spelling per instant, so entries hash stably."""
    if moment.tzinfo is None:
        raise InputError(
            f"timestamp {moment.isoformat()} has no time zone",
            hint="pass an aware datetime, e.g. datetime.now(UTC)",
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def parse_timestamp(text: str) -> datetime:
    """Inverse of `format_timestamp`; rejects any other spelling."""
    try:
        if not _TIMESTAMP_RE.match(text):
            raise ValueError(text)
        moment = datetime.fromisoformat(text)  # 3.11 reads the `Z`; far faster than strptime
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"not a timestamp: {text!r}",
            hint="expected RFC 3339 UTC like 2026-01-31T12:00:00.000000Z",
        ) from exc
    return moment


@dataclass(frozen=True, slots=True, order=True)
class _UlidId:
    """`<prefix><ULID>`: the shape shared by party, run, revenue and payout ids.

    A subclass names only its prefix, `class PartyId(_UlidId, prefix="party:")`, and stays
    a type of its own: a PartyId never equals, nor sorts with, a RunId of the same ULID.
    """

    ulid: str

    PREFIX: ClassVar[str] = ""
    WHAT: ClassVar[str] = ""

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        # super() with arguments: slots=True rebuilt this class, so the bare form fails
        super(_UlidId, cls).__init_subclass__(**kwargs)
        cls.PREFIX = prefix
        cls.WHAT = prefix.removesuffix(":")

    @classmethod
    def new(cls, clock: Clock = utc_now) -> Self:
        from ulid import ULID  # python-ulid reads its own version at import: ~50 ms

        return cls(str(ULID.from_datetime(clock())))

    @classmethod
    def parse(cls, text: str) -> Self:
        ulid = text[len(cls.PREFIX) :] if isinstance(text, str) else ""
        if not isinstance(text, str) or not text.startswith(cls.PREFIX) or not _ULID_RE.match(ulid):
            raise InputError(
                f"not a {cls.WHAT} id: {text!r}", hint=f"expected {cls.PREFIX}<26-character ULID>"
            )
        return cls(ulid)

    def __str__(self) -> str:
        return f"{self.PREFIX}{self.ulid}"


class PartyId(_UlidId, prefix="party:"):
    """`party:<ULID>`: a contributor, operator, consumer, auditor or coop."""

    __slots__ = ()


class RunId(_UlidId, prefix="run:"):
    """`run:<ULID>`: one activity (preprocess, train, evaluate, serve) that used and made assets."""

    __slots__ = ()


class RevenueId(_UlidId, prefix="revenue:"):
    """`revenue:<ULID>`: money one service or model earned in one period."""

    __slots__ = ()


class PayoutId(_UlidId, prefix="payout:"):
    """`payout:<ULID>`: one export of balances to a payment rail."""

    __slots__ = ()


_PERIOD_RE = re.compile(r"^(\d{4})(?:-(Q[1-4]|0[1-9]|1[0-2]))?$")


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """An accounting period: a year (`2026`), a quarter (`2026-Q1`) or a month (`2026-03`).

    Held as its first and last month (`year * 12 + month - 1`), so a statement for a
    quarter finds the revenue booked to each of its months, and a year's finds all.
    """

    first_month: int
    last_month: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise InputError(
                f"not a period: {text!r}",
                hint="write a year (2026), a quarter (2026-Q1) or a month (2026-03)",
            )
        year, part = int(match[1]), match[2]
        if part is None:
            first, last = 0, 11
        elif part.startswith("Q"):
            first = (int(part[1]) - 1) * 3
            last = first + 2
        else:
            first = last = int(part) - 1
        return cls(year * 12 + first, year * 12 + last, text)

    @classmethod
    def of_month(cls, month: int) -> Period:
        """The one-month period of `month` (`year * 12 + month - 1`), e.g. 2026-03."""
        return cls(month, month, f"{month // 12:04d}-{month % 12 + 1:02d}")

    def contains(self, other: Period) -> bool:
        return self.first_month <= other.first_month and other.last_month <= self.last_month

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """`sha256:<64 lowercase hex>`: the content address of an asset."""

    algorithm: Literal["sha256"]
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, _, hexpart = text.partition(":") if isinstance(text, str) else ("", "", "")
        if algorithm != "sha256" or not _HEX64_RE.match(hexpart):
            raise InputError(f"not a digest: {text!r}", hint="expected sha256:<64 lowercase hex>")
        return cls("sha256", hexpart)

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls("sha256", hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"
