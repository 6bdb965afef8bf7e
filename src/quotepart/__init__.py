"""quotepart: record, value and share the contributions behind AI models, in a verifiable log."""

from quotepart.errors import QuotepartError
from quotepart.workspace import Workspace, init_workspace, open_workspace

__all__ = ["QuotepartError", "Workspace", "init_workspace", "open_workspace"]
__version__ = "0.1.0"
