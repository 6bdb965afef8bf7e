"""The log in the standards other tools read: W3C PROV, OpenLineage and Croissant.

Each export renders one `ProvenanceGraph` read from the log, so the three describe the
same facts, and each is checked in the tests with the standard's own library (`prov`,
`openlineage-python`, `mlcroissant`).

```python
from quotepart.provenance.export import export_prov, export_openlineage, export_croissant
text = export_prov(ws, model, format="jsonld")      # the model's upstream lineage
lines = export_openlineage(ws)                       # every run: START + COMPLETE/FAIL
card = export_croissant(ws, dataset)                 # croissant.json of one dataset
```
"""

from quotepart.provenance.export.croissant import (
    CROISSANT_KINDS,
    croissant_metadata,
    export_croissant,
)
from quotepart.provenance.export.openlineage import (
    CONTRIBUTIONS_FACET,
    RUN_FACET,
    export_openlineage,
    openlineage_events,
    openlineage_run_id,
)
from quotepart.provenance.export.prov import (
    PROV_FORMATS,
    ProvenanceGraph,
    export_prov,
    lineage_graph,
    prov_document,
)

__all__ = [
    "CONTRIBUTIONS_FACET",
    "CROISSANT_KINDS",
    "PROV_FORMATS",
    "RUN_FACET",
    "ProvenanceGraph",
    "croissant_metadata",
    "export_croissant",
    "export_openlineage",
    "export_prov",
    "lineage_graph",
    "openlineage_events",
    "openlineage_run_id",
    "prov_document",
]
