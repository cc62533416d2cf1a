"""osteon.report."""
