"""The quotepart error tree: every failure a user can meet, each with a hint.

```
QuotepartError                      exit 1   HTTP 500
├── InputError                      exit 2   HTTP 422   bad input: fix it and retry
│   ├── MalformedEntryError                            bytes or JSON that are no entry
│   ├── UnknownKindError                               a kind or version this build does not know
│   ├── KindMismatchError                              an entry of another kind than the one asked for
│   ├── UnknownAuthorError                             signed by a party the log has never registered
│   ├── WrongLogError                                  an entry signed for another log (origin)
│   ├── OutOfRangeError                                an index or tree size beyond the log
│   ├── MoneyError                                     an unknown currency, a fraction of a minor unit, bad weights
│   ├── PolicyError                                    a sharing policy that cannot be applied as written
│   ├── LineageCycleError                              an asset that would be its own ancestor
│   └── PaymentDetailsError                            an invalid IBAN, BIC or mobile-money number
├── VerificationError               exit 3   HTTP 409   something does not check out
│   └── SignatureError                                 a signature that does not verify
├── NotFoundError                   exit 4   HTTP 404
│   └── WorkspaceNotFoundError                         no workspace at that place
├── StorageError                    exit 5   HTTP 503   the database cannot be reached or used
└── ConservationError               exit 1   HTTP 500   money lost or made: a bug in quotepart

QuotepartWarning (UserWarning)                          worth a look, nothing refused
├── SharedPayoutReferenceWarning                        two parties give the same payout account
└── OverlapWarning (quotepart.provenance.overlap)       a record set holds an earlier one's records
```

ConservationError is not a MoneyError: it is never the user's input, so it must not
read as "fix it and retry" (exit 2, HTTP 422), nor be caught by an `except InputError`.
It is raised, not asserted, so `python -O` cannot switch the check off.

Only the standard library is imported here, so every layer can raise these.
"""

from __future__ import annotations


class QuotepartError(Exception):
    """Base of all quotepart errors; `hint` tells the user what to do next."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(QuotepartError):
    """The input was wrong; nothing was written."""

    exit_code = 2


class MalformedEntryError(InputError):
    """Bytes that do not decode to a well-formed entry."""


class UnknownKindError(InputError):
    """An entry kind or version that this build of quotepart cannot read."""


class KindMismatchError(InputError):
    """An entry read as one kind that is of another (a leaf index pointing elsewhere)."""


class UnknownAuthorError(InputError):
    """An entry whose author has not been registered in the log."""


class WrongLogError(InputError):
    """An entry signed for another log (its origin is not this log's); nothing was written."""


class OutOfRangeError(InputError):
    """An index or tree size beyond the current log."""


class MoneyError(InputError):
    """An amount, currency or set of weights that exact money cannot take."""


class PolicyError(InputError):
    """A sharing policy that is malformed or cannot be applied to this lineage."""


class LineageCycleError(InputError):
    """An asset that would be its own ancestor: value cannot flow round a loop."""


class PaymentDetailsError(InputError):
    """Payment details (IBAN, BIC, MSISDN) that a payment rail would reject."""


class RightsError(InputError):
    """An entry signed by a party that holds no right to sign it (see docs/rights.md).

    `rule` names the rule broken (`policy`, `valuation`, `contribution`, ...), so a
    refusal at append and a finding of `verify` read the same.
    """

    def __init__(self, message: str, *, rule: str, hint: str | None = None) -> None:
        super().__init__(f"{message} (rule: {rule})", hint=hint)
        self.rule = rule


class AlreadyRegisteredError(InputError):
    """Content another party registered first: nothing was recorded in the caller's name.

    `asset` is its digest; `registrant`, `registered_at` and `leaf_index` say who
    registered it and when; the caller may dispute it with a claim (`Workspace.file_claim`).
    """

    def __init__(
        self,
        message: str,
        *,
        asset: str,
        registrant: str,
        registered_at: str,
        leaf_index: int,
        hint: str,
    ) -> None:
        super().__init__(message, hint=hint)
        self.asset = asset
        self.registrant = registrant
        self.registered_at = registered_at
        self.leaf_index = leaf_index


class ReadOnlyWorkspaceError(InputError):
    """A command that writes, on a workspace opened read-only (read-only media, or asked)."""


class VerificationError(QuotepartError):
    """A check failed: the data does not match what was signed or committed to."""

    exit_code = 3


class SignatureError(VerificationError):
    """A signature does not verify under the key it claims."""


class NotFoundError(QuotepartError):
    """The thing asked for does not exist."""

    exit_code = 4


class WorkspaceNotFoundError(NotFoundError):
    """No quotepart workspace at the given place."""


class StorageError(QuotepartError):
    """The database could not be reached or refused the operation."""

    exit_code = 5


class KeyFileError(StorageError):
    """A key or secret file of the workspace is empty, truncated or unreadable.

    Never repaired by making a new key: a key already used (to sign, or to pseudonymise
    consumers in the append-only log) must come back from a backup.
    """


class ConservationError(QuotepartError):
    """Parts that do not add up to their whole: minor units lost or made by our own code.

    Raised by the invariant checks of the exact split and of the allocation; a bug to
    report, never bad input. Nothing is written when it is raised.
    """


class QuotepartWarning(UserWarning):
    """Base of quotepart's warnings: something worth a look that was not refused."""


class SharedPayoutReferenceWarning(QuotepartWarning):
    """Two parties of one workspace give the same payout reference (IBAN or mobile number).

    Allowed (a household or an organisation may share an account), but often a typo or a
    copy-paste: whoever holds that account receives both parties' money.
    """
