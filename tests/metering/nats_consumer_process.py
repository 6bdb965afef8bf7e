"""A NATS consumer process for the kill tests, paused between commit and acknowledgement.

Usage: python -m tests.metering.nats_consumer_process WORKSPACE URL STREAM SUBJECT BATCH PAUSE_S

Consumes like `quotepart usage consume` (same `Workspace.consume_usage`), with --ack-wait
2. After each batch is committed it prints `committed <first seq> <last seq>` (flushed)
and then blocks the event loop for PAUSE_S seconds: the batch's acknowledgements are
queued but not sent, so a SIGKILL then lands between commit and acknowledgement.
"""

from __future__ import annotations

import sys
import time

import orjson

from quotepart.metering.nats import BatchDone, ConsumeOptions
from quotepart.workspace import open_workspace


def main() -> None:
    folder, url, stream, subject, batch, pause = sys.argv[1:7]

    def on_batch(done: BatchDone) -> None:
        ids = [orjson.loads(data)["id"] for data in done.data]
        sys.stdout.write(f"committed {ids[0]} {ids[-1]}\n")
        sys.stdout.flush()
        time.sleep(float(pause))  # blocks the loop: the acks stay queued

    options = ConsumeOptions(url, stream, subject, batch_size=int(batch), ack_wait_s=2.0)
    with open_workspace(folder) as ws:
        ws.consume_usage(options, on_batch=on_batch)


if __name__ == "__main__":
    main()
