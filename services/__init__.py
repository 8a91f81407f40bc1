"""Use cases, one module each: the transaction, the rules from ``domain``, the storage calls, the audit record and
the figures. Adapters (chat commands, web pages, the CLI, the Matrix runtime) call these and render the outcome."""
