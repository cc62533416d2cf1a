"""osteon.serve."""
