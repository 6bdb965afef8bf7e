"""A writer process for the crash and concurrency tests.

Usage: python -m tests.writer_process WORKSPACE PARTY_ID TAG COUNT BATCH [DATABASE_URL]

Appends COUNT asset entries in batches of BATCH and prints `<leaf index> <digest>` for
each one, flushed, only after its append call has returned (committed).
"""

from __future__ import annotations

import sys

from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import AssetRegistered
from quotepart.workspace import open_workspace


def main() -> None:
    folder, party_text, tag, count, batch = sys.argv[1:6]
    database_url = sys.argv[6] if len(sys.argv) > 6 else None
    party = PartyId.parse(party_text)
    with open_workspace(folder, database_url=database_url) as ws:
        for start in range(0, int(count), int(batch)):
            bodies = [
                AssetRegistered(Digest.of_bytes(f"{tag}/{n}".encode()), "dataset", f"{tag}/{n}")
                for n in range(start, min(start + int(batch), int(count)))
            ]
            indexes = ws.append_many([(body, party) for body in bodies])
            sys.stdout.write(
                "".join(f"{i} {b.asset}\n" for i, b in zip(indexes, bodies, strict=True))
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
