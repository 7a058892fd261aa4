"""Leaf vocabulary: errors, SSE, JSON, redaction, wildcards, addresses, lock-outs. Imports nothing of ccgate."""
