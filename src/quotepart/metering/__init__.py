"""Metering: who used a service, how much, pseudonymised before anything is stored.

This is the small, honest first part of metering: usage entries with keyed-hash
pseudonyms, and billing a period's usage as revenue at a per-unit tariff. CloudEvents
ingestion, receipt batches and private aggregates come with the metering issue.
"""

from quotepart.metering.usage import UsageEvent, UsageRecorder, pseudonymise

__all__ = ["UsageEvent", "UsageRecorder", "pseudonymise"]
