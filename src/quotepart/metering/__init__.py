"""Metering: who used a service, how much, pseudonymised before anything is stored.

This is the small, honest first part of metering: usage entries with keyed-hash
pseudonyms, counted per service and period (`quotepart.sharing` bills them as revenue). CloudEvents
ingestion, receipt batches and private aggregates come with the metering issue.
"""

from quotepart.metering.service import Metering, UsageEvent, pseudonymise

__all__ = ["Metering", "UsageEvent", "pseudonymise"]
