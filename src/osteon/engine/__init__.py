"""osteon.engine."""
