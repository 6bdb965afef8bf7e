"""Fair sharing: revenue flows upstream through the lineage, exactly, to every contributor.

```python
revenue = ws.record_revenue(service, "1200.00", "EUR", period="2026-Q1", source="invoice 17", by=op)
ws.set_policy(model, pool="1/5", roles={"data": "4/5", "annotation": "1/5"}, by=op)
shared = ws.share(revenue)                       # recorded as an allocation.recorded entry
ws.statement(hospital, "2026-Q1").to_csv()       # every line traced to the entries behind it
proof = ws.statement_proof(hospital, "2026-Q1")  # verify_statement(proof) anywhere, offline
```
"""

from quotepart.allocation import Allocation, Hop, Line, SharingFacts, allocate
from quotepart.sharing.statements import Statement, VerifiedStatement, verify_statement

__all__ = [
    "Allocation",
    "Hop",
    "Line",
    "SharingFacts",
    "Statement",
    "VerifiedStatement",
    "allocate",
    "verify_statement",
]
