"""osteon.explain."""
