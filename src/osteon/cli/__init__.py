"""Command-line interface: one module per subcommand; the only place that reads argv."""
