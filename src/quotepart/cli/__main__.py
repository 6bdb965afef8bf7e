"""`python -m quotepart.cli`: the same as the `quotepart` command."""

from quotepart.cli import main

main()
