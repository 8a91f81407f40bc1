"""The ``zsm-bot`` subcommands; each parses its arguments, calls services and prints one Dutch line per outcome."""
