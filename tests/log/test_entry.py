"""Entries: RFC 8785 bytes, signatures, and every kind of malformed input refused by name."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotepart.errors import InputError, MalformedEntryError, SignatureError, UnknownKindError
from quotepart.ids import Digest, PartyId
from quotepart.log import SigningKey, canonicalize, parse_canonical, parse_entry, sign_entry
from quotepart.log.kinds import (
    AssetRegistered,
    ContributionRecorded,
    PartyRegistered,
    decode_body,
)
from tests.conftest import FakeClock

ORIGIN = "test.local/log"
KEY = SigningKey.from_seed(bytes(range(32)))
PARTY = PartyId("01KDVDNA01B8RSBPFQMW9M1J7W")
ASSET = AssetRegistered(Digest.of_bytes(b"x"), "dataset", "x")


def test_rfc8785_sorts_keys_by_utf16_code_units() -> None:
    """RFC 8785 §3.2.3's sorting example."""
    document = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = list(json.loads(canonicalize(document)).values())
    assert order == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_canonical_form_is_required_and_floats_are_refused() -> None:
    assert parse_canonical(b'{"a":1,"b":[true,null]}') == {"a": 1, "b": [True, None]}
    with pytest.raises(MalformedEntryError, match="canonical form"):
        parse_canonical(b'{"b":1, "a":2}')
    with pytest.raises(MalformedEntryError, match="floating-point"):
        parse_canonical(b'{"a":1.5}')
    with pytest.raises(MalformedEntryError, match="floating-point"):
        canonicalize({"amount": 0.1})
    with pytest.raises(MalformedEntryError, match="not JSON"):
        parse_canonical(b'{"a":')
    with pytest.raises(MalformedEntryError, match="JSON object"):
        parse_canonical(b"[1]")


def test_a_signed_entry_round_trips_and_its_id_is_the_rfc9162_leaf_hash() -> None:
    entry = sign_entry(ASSET, origin=ORIGIN, author=PARTY, key=KEY, clock=FakeClock())
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + entry.canonical).digest()
    parsed = parse_entry(entry.canonical)
    assert parsed == entry
    assert parsed.body() == ASSET
    parsed.verify(KEY.public)
    with pytest.raises(SignatureError):
        parsed.verify(SigningKey.generate().public)


def test_signing_is_deterministic_so_a_repeat_has_the_same_id() -> None:
    first = sign_entry(ASSET, origin=ORIGIN, author=PARTY, key=KEY, clock=FakeClock())
    again = sign_entry(ASSET, origin=ORIGIN, author=PARTY, key=KEY, clock=FakeClock())
    assert first.canonical == again.canonical


def mutate(entry_bytes: bytes, **changes: object) -> bytes:
    document = json.loads(entry_bytes)
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    return canonicalize(document)


GOOD = sign_entry(ASSET, origin=ORIGIN, author=PARTY, key=KEY, clock=FakeClock()).canonical


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        pytest.param(b"not json", MalformedEntryError, "not JSON", id="not-json"),
        pytest.param(GOOD + b" ", MalformedEntryError, "canonical", id="trailing-space"),
        pytest.param(
            mutate(GOOD, kind="asset.deleted"),
            UnknownKindError,
            "unknown entry kind",
            id="unknown-kind",
        ),
        pytest.param(
            mutate(GOOD, v=3), UnknownKindError, "unknown version 3", id="unknown-version"
        ),
        pytest.param(mutate(GOOD, v=0), UnknownKindError, "unknown version 0", id="version-zero"),
        pytest.param(
            mutate(GOOD, v="1"),
            MalformedEntryError,
            "version must be an integer",
            id="version-string",
        ),
        pytest.param(
            mutate(GOOD, sig=None), MalformedEntryError, "missing fields", id="no-signature"
        ),
        pytest.param(
            mutate(GOOD, extra=1), MalformedEntryError, "unexpected fields", id="extra-field"
        ),
        pytest.param(
            mutate(GOOD, sig="AAAA"), MalformedEntryError, "signature has 3 bytes", id="short-sig"
        ),
        pytest.param(
            mutate(GOOD, sig="!!"), MalformedEntryError, "not base64", id="sig-not-base64"
        ),
        pytest.param(mutate(GOOD, author="alice"), InputError, "not a party id", id="bad-author"),
        pytest.param(
            mutate(GOOD, ts="yesterday"), InputError, "not a timestamp", id="bad-timestamp"
        ),
        pytest.param(
            mutate(GOOD, body=[]), MalformedEntryError, "body must be a JSON object", id="body-list"
        ),
        pytest.param(
            mutate(GOOD, body={"asset": "sha256:00", "asset_kind": "dataset", "name": "x"}),
            InputError,
            "not a digest",
            id="bad-digest",
        ),
        pytest.param(
            mutate(
                GOOD,
                body={"asset": str(Digest.of_bytes(b"x")), "asset_kind": "rumour", "name": "x"},
            ),
            MalformedEntryError,
            "asset_kind",
            id="bad-asset-kind",
        ),
    ],
)
def test_malformed_entries_are_refused_saying_what_is_wrong(
    data: bytes, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_entry(data)
    assert isinstance(caught.value, InputError)


def test_bodies_validate_their_fields() -> None:
    with pytest.raises(MalformedEntryError, match="share"):
        ContributionRecorded.from_body(
            {"party": str(PARTY), "asset": str(ASSET.asset), "role": "data", "share": "2/4"}
        )
    with pytest.raises(MalformedEntryError, match="share"):
        ContributionRecorded.from_body(
            {"party": str(PARTY), "asset": str(ASSET.asset), "role": "data", "share": "3/2"}
        )
    with pytest.raises(MalformedEntryError, match="roles"):
        PartyRegistered.from_body(
            {
                "party": str(PARTY),
                "name": "A",
                "roles": ["king"],
                "public_key": base64.b64encode(KEY.public.raw).decode(),
            }
        )
    with pytest.raises(MalformedEntryError, match="public_key"):
        PartyRegistered.from_body(
            {"party": str(PARTY), "name": "A", "roles": ["coop"], "public_key": "AAAA"}
        )
    with pytest.raises(InputError, match="no time zone"):
        sign_entry(ASSET, origin=ORIGIN, author=PARTY, key=KEY, clock=lambda: datetime(2026, 1, 1))


def test_unknown_kinds_name_the_known_ones() -> None:
    with pytest.raises(UnknownKindError) as caught:
        decode_body("party.deleted", 1, {})
    assert caught.value.hint is not None
    assert "party.registered" in caught.value.hint


names = st.text(
    # names refuse control characters (Cc, U+0000 included) and bidirectional overrides and
    # isolates (tests/test_hostile_names.py); json_values below covers canonical escapes
    st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc"),
        exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    ),
    min_size=1,
    max_size=50,
).filter(lambda s: s.strip() != "")


@given(
    name=names,
    numerator=st.integers(1, 10**6),
    extra=st.integers(0, 10**6),
    role=st.sampled_from(["annotation", "code", "compute", "data", "upstream_model"]),
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
)
def test_parse_of_sign_is_identity(
    name: str, numerator: int, extra: int, role: str, moment: datetime
) -> None:
    share = Fraction(numerator, numerator + extra)
    for body in (
        AssetRegistered(Digest.of_bytes(name.encode()), "model", name),
        ContributionRecorded(PARTY, Digest.of_bytes(name.encode()), role, share),
        PartyRegistered(PARTY, name[:200], ("contributor",), KEY.public),
    ):
        entry = sign_entry(body, origin=ORIGIN, author=PARTY, key=KEY, clock=lambda: moment)
        assert canonicalize(json.loads(entry.canonical)) == entry.canonical
        unsigned = {k: v for k, v in json.loads(entry.canonical).items() if k != "sig"}
        assert entry.signed_message == b"quotepart/entry/v2\n" + canonicalize(unsigned)
        parsed = parse_entry(entry.canonical)
        assert parsed == entry
        assert parsed.body() == body
        assert parsed.time == moment
        parsed.verify(KEY.public)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text(st.characters(codec="utf-8"), max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@given(document=st.dictionaries(st.text(max_size=4), json_values, max_size=5))
def test_the_fast_canonical_check_agrees_with_rfc8785(document: dict[str, object]) -> None:
    """`parse_canonical` may compare with the C encoder; it must decide exactly as rfc8785."""
    import rfc8785

    try:
        reference = bytes(rfc8785.dumps(document))
    except rfc8785.CanonicalizationError:
        with pytest.raises(MalformedEntryError):  # e.g. integers beyond 2**53
            parse_canonical(
                json.dumps(
                    document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ).encode("utf-8", "surrogatepass")
            )
        return
    assert parse_canonical(reference) == json.loads(reference)
    try:
        stdlib = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except UnicodeEncodeError:
        return
    if stdlib == reference:
        parse_canonical(stdlib)
    else:
        with pytest.raises(MalformedEntryError, match="canonical form"):
            parse_canonical(stdlib)
    with pytest.raises(MalformedEntryError):
        parse_canonical(reference[:-1] + b" }")


def test_a_verified_entry_carries_its_signer_and_equals_its_wire_bytes() -> None:
    from quotepart.errors import SignatureError
    from quotepart.log import VerifiedEntry

    key, other = SigningKey.generate(), SigningKey.generate()
    party = PartyId.new(FakeClock())
    entry = sign_entry(
        PartyRegistered(party, "Ada", ("contributor",), key.public),
        origin=ORIGIN,
        author=party,
        key=key,
    )
    assert isinstance(entry, VerifiedEntry)
    assert entry.signer == key.public
    parsed = parse_entry(entry.canonical)
    assert not isinstance(parsed, VerifiedEntry)
    assert parsed == entry
    assert hash(parsed) == hash(entry)
    assert parsed.verified(key.public).signer == key.public
    with pytest.raises(SignatureError):
        parsed.verified(other.public)


def test_a_nul_character_anywhere_in_a_body_is_refused_at_sign_and_at_parse() -> None:
    """PostgreSQL's text columns cannot hold U+0000 (found by the domain simulator): no
    entry may, so a log reads the same on every backend."""
    key = SigningKey.generate()
    party = PartyId.new(FakeClock())
    with pytest.raises(MalformedEntryError, match=r"body\.name holds a NUL"):
        sign_entry(
            PartyRegistered(party, "A\x00B", ("contributor",), key.public),
            origin=ORIGIN,
            author=party,
            key=key,
        )
    good = sign_entry(
        PartyRegistered(party, "AxB", ("contributor",), key.public),
        origin=ORIGIN,
        author=party,
        key=key,
    )
    forged = good.canonical.replace(b'"AxB"', b'"A\\u0000B"')
    with pytest.raises(MalformedEntryError, match="NUL"):
        parse_entry(forged)
