"""An export process for the payout crash tests.

Usage: python -m tests.payout_process WORKSPACE PAYER STEP [DATABASE_URL]

Exports 2026-Q1 in EUR for PAYER and ends the process with `os._exit` (no cleanup, no
`finally`) when the export reaches STEP, one of `EXPORT_FAULT_POINTS`.
"""

from __future__ import annotations

import os
import sys

from quotepart.ids import PartyId
from quotepart.workspace import open_workspace

DEBTOR = {"debtor_name": "Lab", "debtor_iban": "NL91ABNA0417164300"}


def main() -> None:
    folder, payer, step = sys.argv[1:4]
    database_url = sys.argv[4] if len(sys.argv) > 4 else None

    def crash(point: str) -> None:
        if point == step:
            os._exit(9)

    with open_workspace(folder, database_url=database_url) as ws:
        ws.sharing.faults = crash
        ws.export_payout("2026-Q1", "EUR", by=PartyId.parse(payer), minimum_minor=1, **DEBTOR)


if __name__ == "__main__":
    main()
