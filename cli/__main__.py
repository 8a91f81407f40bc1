"""``python -m cli``: the same entry point as the installed ``zsm-bot`` command (tests run it this way)."""

from cli.main import main

raise SystemExit(main())
