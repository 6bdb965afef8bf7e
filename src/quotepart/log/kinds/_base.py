"""The contract every entry body follows, and the checks they share."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, Self, TypeVar, cast, dataclass_transform

from quotepart.errors import MalformedEntryError, UnknownKindError
from quotepart.text import printable, unsafe_character

RawBody = dict[str, Any]
Upcaster = Callable[[RawBody], RawBody]


class EntryBody(Protocol):
    """A frozen, versioned fact. `KIND` is a stable string, never a Python path."""

    KIND: ClassVar[str]
    VERSION: ClassVar[int]

    def to_body(self) -> RawBody: ...

    @classmethod
    def from_body(cls, body: RawBody) -> Self: ...


K = TypeVar("K", bound=type[EntryBody])


@dataclass(frozen=True, slots=True)
class KindDeclaration:
    """Everything the log knows about one entry kind, declared once beside its body class.

    `upcasters[v]` turns a version-v body into a version-(v+1) body, so an entry written
    years ago still decodes. `log_only` kinds change no projection table (a published
    report is a fact to prove, not a row to query); every other kind must have a
    projection declared in `quotepart.store.projections`, which a test checks.
    """

    body: type[EntryBody]
    upcasters: Mapping[int, Upcaster]
    log_only: bool

    @property
    def kind(self) -> str:
        return self.body.KIND

    @property
    def version(self) -> int:
        return self.body.VERSION


_DECLARED: dict[str, KindDeclaration] = {}
DECLARED: Mapping[str, KindDeclaration] = MappingProxyType(_DECLARED)
"""kind -> its declaration, filled as each kind's module is imported."""


class KindBody:
    """The base of every entry body class: `KIND` and `VERSION` are set by `@entry_kind`."""

    __slots__ = ()
    KIND: ClassVar[str]
    VERSION: ClassVar[int]


@dataclass_transform(frozen_default=True)
def entry_kind(
    kind: str,
    *,
    version: int = 1,
    upcasters: Mapping[int, Upcaster] | None = None,
    log_only: bool = False,
) -> Callable[[K], K]:
    """Declare a kind of the log: its stable name, its current version, the upcasters from
    every older version, and whether it is log-only. The class becomes a frozen, slotted
    dataclass.

    ```python
    @entry_kind("asset.registered", version=2, upcasters={1: upcast_asset_v1})
    class AssetRegistered(KindBody):
        asset: Digest
        ...
    ```
    """

    def declare(cls: K) -> K:
        steps = dict(upcasters or {})
        if sorted(steps) != list(range(1, version)):
            raise TypeError(
                f"{kind} is at version {version}: it needs an upcaster from each "
                f"earlier version (1 to {version - 1}), got {sorted(steps)}"
            )
        known = _DECLARED.get(kind)
        if known is not None and known.body.__qualname__ != cls.__qualname__:
            raise TypeError(f"entry kind {kind!r} is declared twice")
        cls.KIND, cls.VERSION = kind, version
        body = cast(K, dataclass(frozen=True, slots=True)(cls))
        _DECLARED[kind] = KindDeclaration(body, MappingProxyType(steps), log_only)
        return body

    return declare


def decode_body(kind: str, version: int, body: RawBody) -> EntryBody:
    """The current body class for (kind, version), upcasting old versions first.

    Raises:
        UnknownKindError: the kind, or this version of it, is not known here.
        MalformedEntryError: the body does not fit the kind's format.
    """
    declared = _DECLARED.get(kind)
    if declared is None:
        raise UnknownKindError(
            f"unknown entry kind {kind!r}",
            hint=f"known kinds: {', '.join(sorted(_DECLARED))}; upgrade quotepart if the entry is newer",
        )
    current = declared.version
    if not 1 <= version <= current:
        raise UnknownKindError(
            f"unknown version {version} of entry kind {kind!r} (this build reads 1 to {current})",
            hint="upgrade quotepart to read newer entries",
        )
    while version < current:
        body = declared.upcasters[version](body)
        version += 1
    return declared.body.from_body(body)


class BodyReader:
    """Reads fields out of a raw body, naming the kind and field in every error."""

    def __init__(self, kind: str, body: RawBody) -> None:
        self.kind = kind
        self.body = body

    def _fail(self, field: str, expected: str) -> MalformedEntryError:
        got = repr(self.body.get(field))
        if len(got) > 80:  # one line, whatever an attacker sent
            got = f"{got[:60]}… ({len(got):,} characters)"
        return MalformedEntryError(
            f"{self.kind}: field {field!r} must be {expected}, got {got}",
            hint=f"see the {self.kind} entry format in quotepart.log.kinds",
        )

    def only(self, *fields: str) -> None:
        extra = sorted(set(self.body) - set(fields))
        if extra:
            raise MalformedEntryError(
                f"{self.kind}: unexpected field(s) {', '.join(extra)}",
                hint=f"a {self.kind} body has only: {', '.join(fields)}",
            )

    def text(self, field: str, *, optional: bool = False, max_length: int = 1000) -> Any:
        value = self.body.get(field)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            raise self._fail(field, f"a non-empty string of at most {max_length} characters")
        return value

    def name(self, field: str, *, max_length: int = 200) -> str:
        """`text`, refusing control characters and bidirectional overrides (`quotepart.text`)."""
        value: str = self.text(field, max_length=max_length)
        unsafe = unsafe_character(value)
        if unsafe is not None and unsafe[1] != "U+0000":  # log.entry.refuse_nul names NUL
            position, code = unsafe
            raise MalformedEntryError(
                f"{self.kind}: the {field} '{printable(value)}' holds {code}, a control or "
                f"bidirectional character, at position {position}",
                hint="remove it: names are shown in terminals, tables and exports, and cannot "
                "hold control characters (ESC, BEL, line breaks) or U+202A-U+202E, U+2066-U+2069",
            )
        return value

    def choice(self, field: str, allowed: frozenset[str]) -> str:
        value = self.body.get(field)
        if value not in allowed:
            raise self._fail(field, f"one of {', '.join(sorted(allowed))}")
        return str(value)

    def choices(self, field: str, allowed: frozenset[str]) -> tuple[str, ...]:
        value = self.body.get(field)
        if (
            not isinstance(value, list)
            or not value
            or any(item not in allowed for item in value)
            or value != sorted(set(value))
        ):
            raise self._fail(
                field, f"a sorted, non-empty list without repeats of {sorted(allowed)}"
            )
        return tuple(value)

    def b64(self, field: str, *, length: int) -> bytes:
        value = self.body.get(field)
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != length:
            raise self._fail(field, f"base64 of {length} bytes")
        return raw

    def integer(self, field: str, *, optional: bool = False, minimum: int = 0) -> Any:
        value = self.body.get(field)
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self._fail(field, f"an integer of at least {minimum}")
        return value

    def text_list(self, field: str, *, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        """A sorted list without repeats (one spelling per set, so equal sets sign equally)."""
        value = self.body.get(field)
        if (
            not isinstance(value, list)
            or any(not isinstance(item, str) or not item for item in value)
            or value != sorted(set(value))
            or (pattern is not None and not all(pattern.match(item) for item in value))
        ):
            expected = "a sorted list of distinct strings"
            raise self._fail(field, expected + (f" matching {pattern.pattern}" if pattern else ""))
        return tuple(value)

    def mapping(self, field: str, *, optional: bool = False) -> dict[str, Any]:
        value = self.body.get(field)
        if value is None and optional:
            return {}
        if not isinstance(value, dict):
            raise self._fail(field, "an object")
        return value

    def fraction(self, field: str) -> Fraction:
        value = self.body.get(field)
        if not isinstance(value, str) or not _FRACTION_RE.match(value):
            raise self._fail(field, "a ratio written as a string like '1/3' or '1'")
        share = Fraction(value)
        if not 0 < share <= 1 or format_fraction(share) != value:
            raise self._fail(field, "a reduced ratio above 0 and at most 1, like '1/3'")
        return share

    def ratio(self, field: str, *, at_most_one: bool = True, optional: bool = False) -> Any:
        """A non-negative reduced ratio ('0', '1/3', '5'), at most 1 unless told otherwise."""
        value = self.body.get(field)
        if value is None and optional:
            return None
        return self.ratio_value(field, value, at_most_one=at_most_one)

    def ratio_value(self, field: str, value: Any, *, at_most_one: bool = True) -> Fraction:
        bound = "from 0 to 1" if at_most_one else "of at least 0"
        if not isinstance(value, str) or not _FRACTION_RE.match(value):
            raise MalformedEntryError(
                f"{self.kind}: {field} must be a ratio {bound} written as a string like '1/3', "
                f"got {value!r}",
                hint="ratios are strings such as '1/5' or '0': entries hold no floats",
            )
        share = Fraction(value)
        if format_fraction(share) != value or (at_most_one and share > 1):
            raise MalformedEntryError(
                f"{self.kind}: {field} must be a reduced ratio {bound}, like '1/3', got {value!r}",
                hint=f"write it as {format_fraction(share)!r}"
                if format_fraction(share) != value
                else "a share cannot exceed the whole",
            )
        return share

    def decimal_value(self, field: str, value: Any) -> Fraction:
        """A decimal string ('0.125', '-3e-2') read exactly: values and errors are not floats."""
        if not isinstance(value, str) or not DECIMAL_RE.match(value):
            raise MalformedEntryError(
                f"{self.kind}: {field} must be a decimal string such as '0.125', got {value!r}",
                hint="entries hold no floats: write numbers as decimal strings",
            )
        return Fraction(value)

    def boolean(self, field: str) -> bool:
        value = self.body.get(field)
        if not isinstance(value, bool):
            raise self._fail(field, "true or false")
        return value


# Numbers in entries are strings read exactly; their digits are bounded (documented in
# docs/architecture.md, "Limits") so that no entry can ask for a number too long to build.
DECIMAL_RE = re.compile(r"^-?(0|[1-9][0-9]{0,39})(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,3})?$")
_FRACTION_RE = re.compile(r"^(0|[1-9][0-9]{0,39})(/[1-9][0-9]{0,39})?$")


def format_fraction(value: Fraction) -> str:
    """One spelling per ratio ('1/3', '1'), so equal shares sign equally."""
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )
