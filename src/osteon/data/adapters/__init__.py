"""osteon.data.adapters."""
