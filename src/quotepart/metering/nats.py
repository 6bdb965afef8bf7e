"""Consuming CloudEvents from NATS JetStream: a durable pull consumer feeding the ingester.

Services publish their CloudEvents (one JSON event per message) to a JetStream stream;
`consume` fetches them through a durable pull consumer, records them in batches with
`quotepart.metering.ingest.Ingester`, and acknowledges a message only after the batch
that holds it is committed. Delivery is at least once (a message not acknowledged, for
a kill or a crash, is delivered again after `ack_wait_s`); the ingester drops an event
whose (`source`, `id`) it has recorded before, so each event is recorded exactly once.

A batch is committed when it holds `batch_size` events, or `max_wait_s` after its first
event arrived, whichever comes first: latency stays bounded at low rates. While one
batch is being committed (in a worker thread) the next is fetched. Several processes
using the same durable name share the stream's messages (JetStream hands each message
to one of them); one PostgreSQL workspace takes all their batches.

A bad event (not JSON, not a CloudEvent, no meter for its type) is reported to
`on_reject` with its stream sequence number as its position, then terminated (`+TERM`):
JetStream does not deliver it again. SIGTERM and SIGINT stop the consumer cleanly: the
batch being committed is finished and acknowledged, events fetched but not committed
are handed back (`-NAK`) for another consumer, and nothing else is acknowledged.

`nats-py` is imported inside the functions that use it, so `import quotepart` stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from quotepart.errors import InputError, NotFoundError, QuotepartError, StorageError
from quotepart.metering.cloudevents import Rejected
from quotepart.metering.ingest import Ingested, Ingester

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

DEFAULT_MAX_WAIT_S = 0.5
DEFAULT_ACK_WAIT_S = 60.0
POLL_S = 1.0
"""Longest single wait for a first message: how soon a stop or an idle exit is noticed."""
RECONNECT_S = 60.0
"""How long a connected consumer tries to reconnect to a server that went away."""
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclass(frozen=True, slots=True)
class ConsumeOptions:
    """Where to consume from and how: every option of `quotepart usage consume`.

    `durable` defaults to `quotepart-<stream>`; processes giving the same name share the
    work. `max_events` and `idle_exit_s` bound a run (tests, batch jobs); without them it
    runs until stopped. With `create`, a missing stream (file storage, capturing
    `subject`) and a missing durable consumer (explicit acks, every message from the
    first) are made; without it they must exist.
    """

    url: str
    stream: str
    subject: str
    durable: str | None = None
    batch_size: int = 10_000
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    max_events: int | None = None
    idle_exit_s: float | None = None
    ack_wait_s: float = DEFAULT_ACK_WAIT_S
    create: bool = True
    connect_timeout_s: float = 2.0

    @property
    def durable_name(self) -> str:
        return self.durable or f"quotepart-{self.stream}"

    def check(self) -> None:
        """Raise InputError for an option that cannot work (before connecting)."""
        if not self.url.startswith(("nats://", "tls://")):
            raise InputError(
                f"not a NATS URL: {self.url[:80]!r}",
                hint="give nats://HOST:PORT (or tls://HOST:PORT), e.g. nats://127.0.0.1:4222",
            )
        for what, name in (("stream", self.stream), ("durable consumer", self.durable_name)):
            if not _NAME_RE.match(name):
                raise InputError(
                    f"{what} name {name[:80]!r} is not valid",
                    hint="use letters, digits, - and _ only (no dots, spaces or wildcards)",
                )
        if not self.subject or " " in self.subject:
            raise InputError(
                f"subject {self.subject!r} is not valid", hint="e.g. usage.> or usage.llm"
            )
        if not 0 < self.max_wait_s <= 60:
            raise InputError(
                f"max wait {self.max_wait_s} s is out of range",
                hint="give 0.001 to 60 seconds (0.5 is the default)",
            )
        if self.max_events is not None and self.max_events < 1:
            raise InputError("--max-events must be at least 1", hint="or leave it out")
        if self.idle_exit_s is not None and self.idle_exit_s <= 0:
            raise InputError("--idle-exit must be positive seconds", hint="or leave it out")
        if self.ack_wait_s < max(1.0, 2 * self.max_wait_s):
            raise InputError(
                f"ack wait {self.ack_wait_s} s is too short",
                hint="give at least 1 s and twice the max wait; a batch's commit must fit in it",
            )


@dataclass(frozen=True, slots=True)
class BatchDone:
    """One committed and acknowledged batch (for progress lines, and for the benchmark)."""

    events: int
    recorded: int
    duplicates: int
    rejected: int
    redelivered: int  # delivered before (a killed or stopped consumer's, or ack_wait passed)
    committed_at_s: float  # time.time() right after the commit, before the acks
    data: Sequence[bytes]  # the messages' payloads, in fetch order


@dataclass
class Consumed:
    """What one consume run did: the ingestion's totals, plus what was acknowledged."""

    ingested: Ingested = field(default_factory=Ingested)
    acknowledged: int = 0  # recorded or duplicate, then +ACK
    terminated: int = 0  # rejected, then +TERM (never delivered again)
    handed_back: int = 0  # fetched, not committed when stopped, then -NAK
    redelivered: int = 0
    stopped_by: str = "end"  # "max-events", "idle", "signal"

    def summary(self) -> str:
        text = f"{self.acknowledged + self.terminated:,} message(s) acknowledged: "
        text += self.ingested.summary()
        if self.redelivered:
            text += f"; {self.redelivered:,} redelivered"
        if self.handed_back:
            text += f"; {self.handed_back:,} handed back uncommitted"
        return f"{text} (stopped: {self.stopped_by})"


def consume(
    ingester: Ingester,
    options: ConsumeOptions,
    *,
    on_batch: Callable[[BatchDone], None] | None = None,
    stop: threading.Event | None = None,
) -> Consumed:
    """Consume `options.subject` of `options.stream` into `ingester` until a bound is met,
    `stop` is set, or SIGTERM/SIGINT arrives (handled when called from the main thread).

    Usage: `consume(Ingester(ledger, None, None), ConsumeOptions(url, "USAGE", "usage.>"))`.

    Raises:
        InputError: an option that cannot work. NotFoundError: no such stream or
            consumer (with `create=False`). StorageError: the NATS server cannot be
            reached, has no JetStream, or the connection was lost (nothing that was
            not committed was acknowledged).
    """
    options.check()
    if options.batch_size != ingester.batch_size:
        raise InputError(  # one fetched batch must be one chunk of the ingester
            f"batch size {options.batch_size:,} differs from the ingester's "
            f"{ingester.batch_size:,}",
            hint="give the ingester and the options the same batch size",
        )
    return asyncio.run(_Consumer(ingester, options, on_batch, stop or threading.Event()).run())


class _Consumer:
    def __init__(
        self,
        ingester: Ingester,
        options: ConsumeOptions,
        on_batch: Callable[[BatchDone], None] | None,
        stop: threading.Event,
    ) -> None:
        self.ingester = ingester
        self.options = options
        self.on_batch = on_batch
        self.stop = stop
        self.result = Consumed()
        self.fetched = 0  # messages taken from the stream (for max_events)

    async def run(self) -> Consumed:
        loop = asyncio.get_running_loop()
        signals = threading.current_thread() is threading.main_thread()
        if signals:
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(number, self._on_signal)
        nc = await _connect(self.options)
        try:
            await _ensure_consumer(nc.jetstream(), self.options)
            puller = _Puller(nc, self.options, self.stop)
            await puller.start()
            await self._loop(puller)
            await self._hand_back(puller.drain())  # on a failure they simply time out
            await nc.flush(timeout=10)
        except QuotepartError:
            raise
        except Exception as exc:
            mapped = _mapped(exc, self.options)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if signals:
                for number in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(number)
            await _close(nc)
        return self.result

    def _on_signal(self) -> None:
        self.stop.set()
        self.result.stopped_by = "signal"

    async def _loop(self, puller: _Puller) -> None:
        options = self.options
        committing: asyncio.Task[None] | None = None
        idle_since = time.monotonic()
        try:
            while not self.stop.is_set():
                want = options.batch_size
                if options.max_events is not None:
                    want = min(want, options.max_events - self.fetched)
                    if want <= 0:
                        self.result.stopped_by = "max-events"
                        break
                messages = await puller.collect(want)
                if self.stop.is_set():
                    await self._hand_back(messages)
                    break
                if not messages:
                    if committing is not None and committing.done():
                        await committing
                        committing = None
                    idle = time.monotonic() - idle_since
                    if options.idle_exit_s is not None and idle >= options.idle_exit_s:
                        self.result.stopped_by = "idle"
                        break
                    continue
                self.fetched += len(messages)
                if committing is not None:
                    await committing  # one commit at a time: the ledger is not shared
                committing = asyncio.create_task(self._commit(messages))
                idle_since = time.monotonic()
        finally:
            if committing is not None:
                await committing  # finish the batch under way, acknowledge it

    async def _commit(self, messages: list[Msg]) -> None:
        rejected: set[int] = set()
        user_reject = self.ingester.on_reject

        def on_reject(found: Rejected) -> None:
            rejected.add(found.position)
            if user_reject is not None:
                user_reject(found)

        delivery = [_delivery(msg.reply) for msg in messages]
        pairs = [
            (sequence, msg.data) for (sequence, _), msg in zip(delivery, messages, strict=True)
        ]
        redelivered = sum(1 for _, delivered in delivery if delivered > 1)
        ingested = await asyncio.to_thread(self._ingest, pairs, on_reject)
        committed_at = time.time()
        for (position, _), msg in zip(pairs, messages, strict=True):
            if position in rejected:
                await msg.term()
            else:
                await msg.ack()
        total = self.result
        total.acknowledged += len(messages) - len(rejected)
        total.terminated += len(rejected)
        total.redelivered += redelivered
        _add(total.ingested, ingested, self.ingester.keep_problems)
        if self.on_batch is not None:
            self.on_batch(
                BatchDone(
                    len(messages), ingested.recorded, ingested.duplicates, ingested.rejected,
                    redelivered, committed_at, [data for _, data in pairs],
                )
            )  # fmt: skip

    def _ingest(
        self, pairs: list[tuple[int, bytes]], on_reject: Callable[[Rejected], None]
    ) -> Ingested:
        saved = self.ingester.on_reject
        self.ingester.on_reject = on_reject
        try:
            return self.ingester.ingest(pairs)
        finally:
            self.ingester.on_reject = saved

    async def _hand_back(self, messages: Sequence[Msg]) -> None:
        for msg in messages:
            await msg.nak()
        self.result.handed_back += len(messages)


class _Puller:
    """Pull requests of our own on one inbox, its messages buffered by a callback.

    nats-py's `PullSubscription.fetch` awaits each message with a timeout of its own (a
    task per message), which caps a consumer near 18,000 messages a second on this
    machine; a subscription callback that appends to a list takes about a third of that
    time. At most one pull request is open at a time; a message that arrives after its
    batch was closed stays in the buffer for the next batch (it is ours until acknowledged
    or handed back).
    """

    def __init__(self, nc: Client, options: ConsumeOptions, stop: threading.Event) -> None:
        self.nc = nc
        self.options = options
        self.stop = stop
        self.buffer: list[Msg] = []
        self.arrived = asyncio.Event()
        self.request_until = 0.0  # monotonic time its open pull request expires
        self.request_left = 0  # messages its open pull request may still bring
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{options.stream}.{options.durable_name}"
        self.inbox = ""
        self.refused = False  # the last request ended with 409 (e.g. too many unacknowledged)
        self.failure: StorageError | None = None

    async def start(self) -> None:
        self.inbox = self.nc.new_inbox()
        await self.nc.subscribe(
            self.inbox,
            cb=self._on_message,
            pending_msgs_limit=16 * self.options.batch_size + 1024,
            pending_bytes_limit=1 << 30,
        )

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers
        if headers and "Status" in headers:
            status = headers["Status"]
            if status != "100":  # 404, 408, 409: the request is over
                self.request_left = 0
                self.refused = status == "409"
                description = headers.get("Description", "")
                if "Deleted" in description or "Gone" in description:
                    self.failure = StorageError(
                        f"JetStream ended the pull: {description} (stream "
                        f"{self.options.stream!r}, consumer {self.options.durable_name!r})",
                        hint="events not committed were not acknowledged; start the consumer "
                        "again (it creates a missing consumer unless --no-create)",
                    )
                self.arrived.set()
            return
        self.buffer.append(msg)
        self.request_left -= 1
        self.arrived.set()

    async def collect(self, want: int) -> list[Msg]:
        """Up to `want` messages: all that arrive within max_wait of the first one (or
        an empty list after a poll of up to POLL_S without any)."""
        options = self.options
        first_at = time.monotonic() if self.buffer else None
        poll_until = time.monotonic() + min(POLL_S, options.idle_exit_s or POLL_S)
        while len(self.buffer) < want and not self.stop.is_set():
            if self.failure is not None:
                raise self.failure
            if self.refused:  # do not hammer a server that refuses: wait a little
                self.refused = False
                await asyncio.sleep(0.05)
            now = time.monotonic()
            until = poll_until if first_at is None else first_at + options.max_wait_s
            if now >= until - 0.001:
                break
            if self.request_left <= 0 or now >= self.request_until:
                expires_s = max(until - now, 0.01)
                self.request_left = want - len(self.buffer)
                self.request_until = now + expires_s
                request = {"batch": self.request_left, "expires": int(expires_s * 1e9)}
                await self.nc.publish(self.subject, orjson.dumps(request), reply=self.inbox)
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), until - time.monotonic())
            if first_at is None and self.buffer:
                first_at = time.monotonic()
        taken = self.buffer[:want]
        del self.buffer[:want]
        return taken

    def drain(self) -> list[Msg]:
        """The messages received and not taken (to hand back when stopping)."""
        taken, self.buffer = self.buffer, []
        return taken


def _delivery(reply: str) -> tuple[int, int]:
    """(stream sequence, times delivered) from a JetStream message's reply subject.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`,
    or with `<domain>.<account hash>` after `$JS.ACK` and a token at the end (ADR-15).
    nats-py's `Msg.metadata` builds a dataclass tree for it, 10x the time of this.
    """
    tokens = reply.split(".")
    at = 4 if len(tokens) == 9 else 6
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":  # pragma: no cover
        raise StorageError(
            f"not a JetStream delivery (reply subject {reply[:80]!r})",
            hint="consume a JetStream stream, not a core NATS subject",
        )
    return int(tokens[at + 1]), int(tokens[at])


def _add(total: Ingested, part: Ingested, keep_problems: int) -> None:
    total.recorded += part.recorded
    total.duplicates += part.duplicates
    total.late += part.late
    total.rejected += part.rejected
    total.problems.extend(part.problems[: max(0, keep_problems - len(total.problems))])
    total.batches.extend(part.batches)
    total.notes.extend(part.notes)


async def _connect(options: ConsumeOptions) -> Client:
    import nats
    import nats.errors

    async def quiet(_exc: Exception) -> None:
        return None  # nats-py logs every failed try with a traceback; we raise one error

    try:
        nc = await nats.connect(
            options.url,
            connect_timeout=options.connect_timeout_s,
            max_reconnect_attempts=1,  # a server that is not there: one error, soon
            reconnect_time_wait=0.5,
            error_cb=quiet,
        )
    except (nats.errors.Error, OSError) as exc:
        raise _unreachable(options, exc) from None
    # Once connected, ride out a restart of the server (about RECONNECT_S): nats-py
    # reads these options at each reconnection, and buffers what is published meanwhile.
    nc.options["max_reconnect_attempts"] = int(RECONNECT_S)
    nc.options["reconnect_time_wait"] = 1.0
    return nc


def _unreachable(options: ConsumeOptions, exc: BaseException) -> StorageError:
    detail = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
    return StorageError(
        f"the NATS server at {options.url} cannot be reached ({detail}); nothing was consumed",
        hint="start it with JetStream on (nats-server -js), or check the URL and port",
    )


async def _ensure_consumer(js: JetStreamContext, options: ConsumeOptions) -> None:
    """Check (with `create`: make) the stream and the durable pull consumer."""
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType
    from nats.js.errors import NotFoundError as StreamNotFound
    from nats.js.errors import ServiceUnavailableError

    durable = options.durable_name
    try:
        try:
            await js.stream_info(options.stream)
        except StreamNotFound:
            if not options.create:
                raise NotFoundError(
                    f"no JetStream stream {options.stream!r} at {options.url}",
                    hint="create it (nats stream add) or leave out --no-create",
                ) from None
            await js.add_stream(
                name=options.stream, subjects=[options.subject], storage=StorageType.FILE
            )
        try:
            await js.consumer_info(options.stream, durable)
        except StreamNotFound:
            if not options.create:
                raise NotFoundError(
                    f"no durable consumer {durable!r} on stream {options.stream!r}",
                    hint="create it, or leave out --no-create to have it made",
                ) from None
            config = ConsumerConfig(
                name=durable,
                durable_name=durable,
                filter_subject=options.subject,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=options.ack_wait_s,
                max_ack_pending=8 * options.batch_size,  # several processes, two batches each
            )
            await js.add_consumer(options.stream, config=config)
    except (NoRespondersError, ServiceUnavailableError, NatsTimeout) as exc:
        raise StorageError(
            f"the NATS server at {options.url} does not answer JetStream requests "
            f"({type(exc).__name__})",
            hint="enable JetStream on it (nats-server -js, or jetstream {} in its config)",
        ) from None


def _mapped(exc: Exception, options: ConsumeOptions) -> QuotepartError | None:
    """A foreign exception met while consuming, as a QuotepartError (rule: map at the edge)."""
    import nats.errors
    from nats.js.errors import APIError

    if isinstance(exc, APIError):
        return InputError(
            f"JetStream refused a request for stream {options.stream!r}: {exc.description}",
            hint="check that the stream captures the subject and that the consumer's "
            "settings match (nats consumer info)",
        )
    if isinstance(exc, nats.errors.Error | OSError):
        return StorageError(
            f"the connection to the NATS server at {options.url} was lost ({type(exc).__name__})",
            hint="events not committed were not acknowledged: they are delivered again "
            "when a consumer comes back",
        )
    return None  # our own bug: let it surface


async def _close(nc: Client) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection
        await nc.close()


def publish_events(url: str, subject: str, events: Sequence[bytes], *, stream: str) -> list[int]:
    """Publish `events` to `subject` and wait for JetStream to store each; returns their
    stream sequence numbers (creating `stream` on `subject` when missing). For tests and
    demos: services publish with their own NATS client.

    Raises:
        StorageError: the server cannot be reached.
    """
    return asyncio.run(_publish(url, subject, events, stream))


async def _publish(url: str, subject: str, events: Sequence[bytes], stream: str) -> list[int]:
    from nats.js.api import StorageType
    from nats.js.errors import NotFoundError as StreamNotFound

    options = ConsumeOptions(url, stream, subject)
    options.check()
    nc = await _connect(options)
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except StreamNotFound:
            await js.add_stream(name=stream, subjects=[subject], storage=StorageType.FILE)
        futures = [await js.publish_async(subject, data) for data in events]
        acks: list[Any] = list(await asyncio.gather(*futures))
        return [int(ack.seq) for ack in acks]
    finally:
        await _close(nc)


__all__ = ["BatchDone", "ConsumeOptions", "Consumed", "consume", "publish_events"]
