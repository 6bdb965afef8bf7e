"""Projections: the tables that are a pure function of the log.

Each entry kind's projection is declared in one module of this package with
`@projects(Kind, ...)` (see `_writer`); importing the package registers them all. They
run inside the append transaction, after the entry is known to be signed by a registered
author, so a projection only enforces the *meaning* of facts. Replaying the log through
them is exactly `rebuild`, and what `verify` compares against the live tables.
"""

from quotepart.store.projections import metering, provenance, sharing
from quotepart.store.projections._writer import (
    PROJECTIONS,
    ProjectionDeclaration,
    ProjectionWriter,
    apply_projections,
    digest_prefix,
    prefetch,
    projects,
)

__all__ = [
    "PROJECTIONS",
    "ProjectionDeclaration",
    "ProjectionWriter",
    "apply_projections",
    "digest_prefix",
    "metering",
    "prefetch",
    "projects",
    "provenance",
    "sharing",
]
