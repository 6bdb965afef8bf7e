"""The demo: a health-data cooperative's model earns money, and everyone who made it gets paid.

The story is told with the public SDK only, so it sits above the workspace and below the
edges: `quotepart demo` (the CLI) renders it, bench/demo.py times it, tests check it.

```python
with quotepart.init_workspace("demo") as ws:
    result = run_story(ws, Path("demo-outputs"), print)
result.amounts                      # party name -> minor units paid
```
"""

from quotepart.demo.story import HOSPITALS, PERIOD, STEPS, DemoResult, run_story

__all__ = ["HOSPITALS", "PERIOD", "STEPS", "DemoResult", "run_story"]
