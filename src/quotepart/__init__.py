"""quotepart: record, value and share the contributions behind AI models, in a verifiable log.

The public names are loaded on first use (PEP 562): `import quotepart` stays cheap, and
`quotepart.log` or `quotepart.valuation` can be imported without the workspace, its
database layer and everything else it brings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quotepart.errors import QuotepartError
    from quotepart.workspace import Workspace, init_workspace, open_workspace

__all__ = ["QuotepartError", "Workspace", "init_workspace", "open_workspace"]
__version__ = "0.1.0"

_LAZY = {
    "QuotepartError": "quotepart.errors",
    "Workspace": "quotepart.workspace",
    "init_workspace": "quotepart.workspace",
    "open_workspace": "quotepart.workspace",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first read, then keep the name here."""
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'quotepart' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
