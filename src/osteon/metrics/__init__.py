"""osteon.metrics."""
