"""The read side: every question the rest of quotepart asks of the projection tables.

One module per area; each function takes a `Connection` and returns typed values, never
rows. The table definitions stay private to `quotepart.store`: the code above asks
questions here and writes no SQL of its own.
"""
