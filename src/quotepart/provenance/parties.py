"""Payout references kept off the log: only a salted commitment to them is signed.

An IBAN or a mobile-money number identifies a person; publishing it in an append-only
log would be forever. The log holds `sha256("quotepart/payout/v1\\n" ‖ salt ‖ reference)`
with a 32-byte random salt, so nobody can confirm a guessed reference, while the party
(or whoever pays it) can later open the commitment by revealing salt and reference.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from quotepart.errors import InputError, VerificationError
from quotepart.ids import Digest

_DOMAIN = b"quotepart/payout/v1\n"
_SALT_SIZE = 32


def normalise_reference(reference: str) -> str:
    """One spelling per account: no spaces, upper case ('de89 3704…' is 'DE893704…')."""
    normalised = re.sub(r"\s+", "", reference).upper()
    if not normalised or len(normalised) > 200:
        raise InputError(
            "a payout reference must be 1 to 200 characters (an IBAN, a phone number, …)",
            hint="pass the account the party is paid to",
        )
    return normalised


@dataclass(frozen=True, slots=True)
class PayoutSecret:
    reference: str
    salt: bytes

    @classmethod
    def new(cls, reference: str) -> PayoutSecret:
        return cls(normalise_reference(reference), secrets.token_bytes(_SALT_SIZE))

    def commitment(self) -> Digest:
        return Digest.of_bytes(_DOMAIN + self.salt + self.reference.encode())

    def open(self, commitment: Digest) -> None:
        """Raise unless this reference and salt are what `commitment` was made from."""
        if self.commitment() != commitment:
            raise VerificationError(
                "the payout reference does not match the commitment in the log",
                hint="the party's payout file was changed or belongs to another party",
            )

    def save(self, path: Path) -> None:
        """Write the secret for the payer only (0600, never overwritten)."""
        document = {"reference": self.reference, "salt": self.salt.hex()}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(document, handle)

    @classmethod
    def load(cls, path: Path) -> PayoutSecret:
        try:
            document = json.loads(path.read_text())
            return cls(str(document["reference"]), bytes.fromhex(document["salt"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"the payout file {path} is unreadable: {exc}", hint="restore it from a backup"
            ) from exc
