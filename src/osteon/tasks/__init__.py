"""osteon.tasks."""
