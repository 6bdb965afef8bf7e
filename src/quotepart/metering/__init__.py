"""Metering: who used a service, how much, pseudonymised before anything is stored.

Meters say how a service's CloudEvents are counted; ingestion validates each event,
pseudonymises its consumer under a keyed hash with key epochs, deduplicates it on
(`source`, `id`) for ever and records events in signed `usage.batch` entries whose
Merkle roots commit to every event (`quotepart.metering.ingest`). The older
`usage.recorded` entries (one per use) still count.
"""

from quotepart.metering.cloudevents import Rejected
from quotepart.metering.ingest import Ingested, Meter
from quotepart.metering.service import Metering, ServiceMeter, UsageEvent, pseudonymise

__all__ = [
    "Ingested",
    "Meter",
    "Metering",
    "Rejected",
    "ServiceMeter",
    "UsageEvent",
    "pseudonymise",
]
