"""osteon.models."""
