"""The keys and secrets of one workspace, in one folder, behind one class.

Layout (every secret file is created exclusively with mode 0600 and never overwritten):

    keys/log.key                      the log's checkpoint signing key
    keys/party-<ULID>.key             keys of the parties this workspace signs for
    keys/party-<ULID>.payout.json     payout references, kept off the log
    keys/party-<ULID>.payout-<hex>.json  a reference the party changed to (one per change)
    keys/usage.key                    the keyed-hash secret that pseudonymises consumers
    payouts/<payout ULID>.xml|.csv    payment files, kept so an export is never paid twice

Only the paths and the lifecycle of these files live here; what is inside a payout
reference or a payment file is the business of `provenance` and `sharing`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from quotepart.errors import NotFoundError
from quotepart.ids import PartyId
from quotepart.log import SigningKey

KEYS_DIR = "keys"
PAYOUTS_DIR = "payouts"
LOG_KEY_FILE = "log.key"
USAGE_KEY_FILE = "usage.key"


class KeyFolder:
    """Every key and secret file of a workspace folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys_dir = root / KEYS_DIR
        self.payouts_dir = root / PAYOUTS_DIR

    # ------------------------------------------------------------ the log key

    @property
    def log_key_path(self) -> Path:
        return self.keys_dir / LOG_KEY_FILE

    def create_log_key(self) -> SigningKey:
        """A new log key, saved; refused if one exists (a log keeps its key for ever)."""
        self.keys_dir.mkdir(mode=0o700, exist_ok=True)
        key = SigningKey.generate()
        key.save(self.log_key_path)
        return key

    def log_key(self) -> SigningKey:
        return SigningKey.load(self.log_key_path)

    # ---------------------------------------------------------- party keys

    def party_key_path(self, party: PartyId) -> Path:
        return self.keys_dir / f"party-{party.ulid}.key"

    def holds_key(self, party: PartyId) -> bool:
        return self.party_key_path(party).exists()

    def party_key(self, party: PartyId) -> SigningKey:
        """The key of `party`, if this workspace signs for it.

        Raises:
            NotFoundError: the party keeps its key elsewhere.
        """
        path = self.party_key_path(party)
        if not path.exists():
            raise NotFoundError(
                f"this workspace holds no key for {party}",
                hint="that party signs its own entries elsewhere; submit them with `quotepart log append`",
            )
        return SigningKey.load(path)

    def save_party_key(self, party: PartyId, key: SigningKey) -> None:
        key.save(self.party_key_path(party))

    def payout_secret_path(self, party: PartyId) -> Path:
        return self.keys_dir / f"party-{party.ulid}.payout.json"

    def payout_change_path(self, party: PartyId, commitment_hex: str) -> Path:
        """The secret behind one `party.payout_changed` (the registration's stays as it was)."""
        return self.keys_dir / f"party-{party.ulid}.payout-{commitment_hex[:16]}.json"

    def forget_party(self, party: PartyId) -> None:
        """Remove a party's files again (its registration did not reach the log)."""
        self.party_key_path(party).unlink(missing_ok=True)
        self.payout_secret_path(party).unlink(missing_ok=True)

    # ---------------------------------------------------------- usage key

    def usage_key(self) -> bytes:
        """The pseudonymisation secret, made on first use (32 random bytes, 0600)."""
        path = self.keys_dir / USAGE_KEY_FILE
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                return path.read_bytes()
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
                handle.flush()
                os.fsync(handle.fileno())
        return path.read_bytes()

    # -------------------------------------------------------- payment files

    def payment_file(self, name: str) -> Path:
        return self.payouts_dir / name

    def partial_payment_file(self, name: str) -> Path:
        """Where a payment file is written before it is published under `name`."""
        path = self.payment_file(name)
        return path.with_suffix(path.suffix + ".partial")

    def write_partial_payment_file(self, name: str, content: bytes) -> Path:
        """Write `content` under the payment file's temporary name and fsync it: not yet published."""
        self.payouts_dir.mkdir(exist_ok=True)
        partial = self.partial_payment_file(name)
        with partial.open("wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        return partial

    def publish_payment_file(self, name: str) -> Path:
        """Rename the temporary file to `name` (atomic) and fsync the folder; the published path."""
        path = self.payment_file(name)
        self.partial_payment_file(name).replace(path)
        _fsync_dir(self.payouts_dir)
        return path

    def write_payment_file(self, name: str, content: bytes) -> Path:
        """Write a payment file whole or not at all (a partial file, then a rename)."""
        self.write_partial_payment_file(name, content)
        return self.publish_payment_file(name)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder to fsync it
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["KEYS_DIR", "LOG_KEY_FILE", "PAYOUTS_DIR", "USAGE_KEY_FILE", "KeyFolder"]
