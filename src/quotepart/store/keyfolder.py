"""The keys and secrets of one workspace, in one folder, behind one class.

Layout (folders 0700; every secret file 0600, written whole or not at all, never overwritten):

    keys/log.key                      the log's checkpoint signing key
    keys/party-<ULID>.key             keys of the parties this workspace signs for
    keys/party-<ULID>.payout.json     payout references, kept off the log
    keys/party-<ULID>.payout-<hex>.json  a reference the party changed to (one per change)
    keys/usage.key                    the keyed-hash secret that pseudonymises consumers
    keys/usage-N.key                  the same secret of epoch N, after `quotepart meter rotate-key`
    keys/database.password            the database password, when the URL had one
    payouts/<payout ULID>.xml|.csv    payment files, kept so an export is never paid twice

Every file is written to a temporary file in the same folder (created exclusively, 0600),
fsynced, and only then given its name with `os.link`, which fails when the name exists; the
folder is fsynced after. So a process killed at any step leaves either no file or the whole
file (plus, at worst, an unused `.*.tmp`), and two processes making the same key at once
end up with one key: the loser reads the winner's. A key file that is empty, short or
unreadable is refused with `KeyFileError`, never used and never replaced by a fresh key.

Only the paths and the lifecycle of these files live here; what is inside a payout
reference or a payment file is the business of `provenance` and `sharing`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from quotepart.errors import InputError, KeyFileError, NotFoundError
from quotepart.ids import PartyId
from quotepart.log import SigningKey

KEYS_DIR = "keys"
PAYOUTS_DIR = "payouts"
LOG_KEY_FILE = "log.key"
USAGE_KEY_FILE = "usage.key"
DATABASE_PASSWORD_FILE = "database.password"
USAGE_KEY_SIZE = 32

_RESTORE = (
    "restore it from a backup; never replace a key that was already used by a new one "
    "(entries signed or pseudonyms recorded under it could no longer be checked or matched)"
)

fault_hook: Callable[[str], None] | None = None
"""Called with the name of each step of a write ('created', 'written', 'synced', 'linked').

For tests only: a hook that calls `os._exit` stands in for a process killed at that step.
"""


def _step(name: str) -> None:
    if fault_hook is not None:
        fault_hook(name)


def private_folder(folder: Path) -> None:
    """Make `folder` (its parent must exist) and keep it for its owner only (0700)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        with contextlib.suppress(OSError):  # not ours to change; the files inside are 0600
            folder.chmod(0o700)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_fsynced(path: Path, content: bytes, flags: int) -> None:
    """`content` in `path` (0600) through `os.open(flags)`, fsynced, each step announced."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o600)
    os.fchmod(descriptor, 0o600)  # a file of that name left by an older version, too
    with os.fdopen(descriptor, "wb") as handle:
        _step("created")
        handle.write(content)
        _step("written")
        handle.flush()
        os.fsync(handle.fileno())
    _step("synced")


def _write_temporary(path: Path, content: bytes) -> Path:
    """`content` in a new 0600 file next to `path`, fsynced; its name starts with a dot."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        _write_fsynced(temporary, content, os.O_EXCL)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        if exc.filename is None:  # a failed write or close names no file: name the one meant
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def create_secret_file(path: Path, content: bytes) -> None:
    """Give `path` the bytes `content`, 0600, whole or not at all; never overwrite it.

    Raises:
        FileExistsError: `path` exists (another process may just have made it).
    """
    temporary = _write_temporary(path, content)
    try:
        os.link(temporary, path)  # atomic, and fails if the name is taken
        _step("linked")
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def write_private_file(path: Path, content: bytes) -> None:
    """Write `path` (0600) whole or not at all, replacing what was there."""
    temporary = _write_temporary(path, content)
    try:
        os.replace(temporary, path)
        _step("linked")
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def read_secret_file(path: Path, *, what: str, size: int | None = None) -> bytes:
    """The bytes of a key or secret file, refused when missing, empty or of the wrong size.

    Raises:
        KeyFileError: naming the file; the hint says to restore it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read the {what} {path}: {exc.strerror}", hint=_RESTORE) from exc
    if not data:
        raise KeyFileError(f"the {what} {path} is empty", hint=_RESTORE)
    if size is not None and len(data) != size:
        raise KeyFileError(
            f"the {what} {path} has {len(data)} bytes, not {size}: it is damaged", hint=_RESTORE
        )
    return data


class KeyFolder:
    """Every key and secret file of a workspace folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys_dir = root / KEYS_DIR
        self.payouts_dir = root / PAYOUTS_DIR

    def _create(self, path: Path, content: bytes) -> None:
        private_folder(self.keys_dir)
        create_secret_file(path, content)

    def _signing_key(self, path: Path, what: str) -> SigningKey:
        data = read_secret_file(path, what=what)
        try:
            return SigningKey.from_pem(data, source=str(path))
        except InputError as exc:
            raise KeyFileError(
                f"the {what} {path} is damaged: {exc.message}", hint=_RESTORE
            ) from exc

    def _save_signing_key(self, path: Path, key: SigningKey) -> None:
        try:
            self._create(path, key.to_pem())
        except FileExistsError as exc:
            raise InputError(
                f"key file {path} already exists; refusing to overwrite a key",
                hint="move it away first if it really is no longer needed",
            ) from exc

    # ------------------------------------------------------------ the log key

    @property
    def log_key_path(self) -> Path:
        return self.keys_dir / LOG_KEY_FILE

    def create_log_key(self) -> SigningKey:
        """A new log key, saved; refused if one exists (a log keeps its key for ever)."""
        key = SigningKey.generate()
        self._save_signing_key(self.log_key_path, key)
        return key

    def log_key(self) -> SigningKey:
        """The log key.

        Raises:
            KeyFileError: missing, empty, truncated or not an Ed25519 key.
        """
        return self._signing_key(self.log_key_path, "log key")

    # ---------------------------------------------------------- party keys

    def party_key_path(self, party: PartyId) -> Path:
        return self.keys_dir / f"party-{party.ulid}.key"

    def holds_key(self, party: PartyId) -> bool:
        return self.party_key_path(party).exists()

    def party_key(self, party: PartyId) -> SigningKey:
        """The key of `party`, if this workspace signs for it.

        Raises:
            NotFoundError: the party keeps its key elsewhere.
            KeyFileError: the key file is empty, truncated or unreadable.
        """
        path = self.party_key_path(party)
        if not path.exists():
            raise NotFoundError(
                f"this workspace holds no key for {party}",
                hint="that party signs its own entries elsewhere; submit them with `quotepart log append`",
            )
        return self._signing_key(path, f"key of {party}")

    def save_party_key(self, party: PartyId, key: SigningKey) -> None:
        self._save_signing_key(self.party_key_path(party), key)

    # ------------------------------------------------------ payout references

    def payout_secret_path(self, party: PartyId) -> Path:
        return self.keys_dir / f"party-{party.ulid}.payout.json"

    def payout_change_path(self, party: PartyId, commitment_hex: str) -> Path:
        """The secret behind one `party.payout_changed` (the registration's stays as it was)."""
        return self.keys_dir / f"party-{party.ulid}.payout-{commitment_hex[:16]}.json"

    def save_payout_secret(self, path: Path, content: bytes) -> None:
        """Keep a payout reference file (0600, never overwritten)."""
        self._create(path, content)

    def payout_secret(self, path: Path) -> bytes:
        """The bytes of a payout reference file (KeyFileError when empty or unreadable)."""
        return read_secret_file(path, what="payout reference file")

    def forget_party(self, party: PartyId) -> None:
        """Remove a party's files again (its registration did not reach the log)."""
        self.party_key_path(party).unlink(missing_ok=True)
        self.payout_secret_path(party).unlink(missing_ok=True)

    # ---------------------------------------------------------- usage keys

    @property
    def usage_key_path(self) -> Path:
        return self.keys_dir / USAGE_KEY_FILE

    def usage_key_epoch_path(self, epoch: int) -> Path:
        """Epoch 1 is `usage.key` (the key before rotation existed); later ones `usage-N.key`."""
        return self.usage_key_path if epoch == 1 else self.keys_dir / f"usage-{epoch}.key"

    def usage_key_epochs(self) -> list[int]:
        """The epochs whose keys this folder holds, oldest first (1 once a key is made)."""
        epochs = [1] if self.usage_key_path.exists() else []
        names = os.listdir(self.keys_dir) if self.keys_dir.is_dir() else []
        for name in names:
            number = name[len("usage-") : -len(".key")]
            if (
                name.startswith("usage-")
                and name.endswith(".key")
                and number.isdigit()
                and int(number) > 1
            ):
                epochs.append(int(number))
        return sorted(epochs)

    def usage_key(self, epoch: int | None = None) -> bytes:
        """The pseudonymisation secret of `epoch` (the newest when None), 32 random bytes
        (0600); the first one is made on first use.

        Two processes using it for the first time at once get the same key: only one
        `os.link` can take the name, and the other reads what it wrote.

        Raises:
            KeyFileError: the file exists but is empty, short or unreadable.
            NotFoundError: `epoch` was rotated in elsewhere and its key is not here.
        """
        if epoch is None:
            epochs = self.usage_key_epochs()
            epoch = epochs[-1] if epochs else 1
        path = self.usage_key_epoch_path(epoch)
        if epoch == 1 and not path.exists():
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                self._create(path, secrets.token_bytes(USAGE_KEY_SIZE))
        if not path.exists():
            raise NotFoundError(
                f"the usage pseudonym key of epoch {epoch} is missing ({path.name})",
                hint=f"copy {path.name} from the machine that rotated it into {self.keys_dir}; "
                + _RESTORE,
            )
        return read_secret_file(
            path, what=f"usage pseudonym key (epoch {epoch})", size=USAGE_KEY_SIZE
        )

    def rotate_usage_key(self) -> int:
        """Make the next epoch's key and return its number; older keys stay, so receipts of
        events pseudonymised under them can still be built."""
        self.usage_key()  # epoch 1 exists before any rotation
        while True:
            epoch = self.usage_key_epochs()[-1] + 1
            try:
                self._create(self.usage_key_epoch_path(epoch), secrets.token_bytes(USAGE_KEY_SIZE))
            except FileExistsError:  # another process rotated at the same moment: go past it
                continue
            return epoch

    # ------------------------------------------------------ database password

    @property
    def database_password_path(self) -> Path:
        return self.keys_dir / DATABASE_PASSWORD_FILE

    def database_password(self) -> str | None:
        """The database password kept here, or None when there is no such file."""
        path = self.database_password_path
        if not path.exists():
            return None
        return read_secret_file(path, what="database password file").decode().rstrip("\n")

    def save_database_password(self, password: str) -> None:
        """Keep the database password (0600); an existing file is replaced."""
        private_folder(self.keys_dir)
        write_private_file(self.database_password_path, password.encode() + b"\n")

    # -------------------------------------------------------- payment files

    def payment_file(self, name: str) -> Path:
        return self.payouts_dir / name

    def partial_payment_file(self, name: str) -> Path:
        """Where a payment file is written before it is published under `name`."""
        return self.payouts_dir / f".{name}.partial"  # dotted: never mistaken for a payment

    def write_partial_payment_file(self, name: str, content: bytes) -> Path:
        """Write `content` under the payment file's temporary name and fsync it: not yet published."""
        private_folder(self.payouts_dir)
        partial = self.partial_payment_file(name)
        _write_fsynced(partial, content, os.O_TRUNC)
        return partial

    def publish_payment_file(self, name: str) -> Path:
        """Rename the temporary file to `name` (atomic) and fsync the folder; the published path."""
        path = self.payment_file(name)
        self.partial_payment_file(name).replace(path)
        _step("linked")
        _fsync_folder(self.payouts_dir)
        return path

    def write_payment_file(self, name: str, content: bytes) -> Path:
        """Write a payment file whole or not at all, for the owner only (0600 in a 0700
        folder): a partial file, then a rename."""
        self.write_partial_payment_file(name, content)
        return self.publish_payment_file(name)


__all__ = [
    "DATABASE_PASSWORD_FILE",
    "KEYS_DIR",
    "LOG_KEY_FILE",
    "PAYOUTS_DIR",
    "USAGE_KEY_FILE",
    "USAGE_KEY_SIZE",
    "KeyFolder",
    "create_secret_file",
    "private_folder",
    "read_secret_file",
    "write_private_file",
]
