"""Ed25519 keys: RFC 8032 §7.1 test vectors, storage with owner-only permissions."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from quotepart.errors import InputError, SignatureError
from quotepart.log.keys import SigningKey, VerifyKey, verify_batch

# RFC 8032 §7.1, TEST 1 and TEST 2: (secret key, public key, message, signature), hex.
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(secret: str, public: str, message: str, signature: str) -> None:
    key = SigningKey.from_seed(bytes.fromhex(secret))
    assert key.public.raw.hex() == public
    assert key.sign(bytes.fromhex(message)).hex() == signature
    key.public.verify(bytes.fromhex(signature), bytes.fromhex(message))
    with pytest.raises(SignatureError):
        key.public.verify(bytes.fromhex(signature), bytes.fromhex(message) + b"!")


def test_batch_verification_reports_the_failing_positions() -> None:
    key = SigningKey.generate()
    items = [(key.public.raw, key.sign(bytes([n])), bytes([n])) for n in range(5)]
    items[3] = (key.public.raw, items[3][1], b"tampered")
    assert verify_batch(items) == [3]


def test_keys_are_saved_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "party.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).public == key.public
    with pytest.raises(InputError, match="refusing to overwrite"):
        SigningKey.generate().save(path)
    assert "PRIVATE" not in repr(key)


def test_bad_key_material_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="32 bytes"):
        VerifyKey.from_raw(b"short")
    (tmp_path / "junk.key").write_bytes(b"not a key")
    with pytest.raises(InputError, match="not a PEM-encoded private key"):
        SigningKey.load(tmp_path / "junk.key")
    with pytest.raises(InputError, match="cannot read key"):
        SigningKey.load(tmp_path / "missing.key")
