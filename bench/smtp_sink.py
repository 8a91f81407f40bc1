"""A local SMTP server in its own process (aiosmtpd, STARTTLS), for benchmarks and crash tests.

    python -m bench.smtp_sink <cert> <key> <port>

Prints "ready" when listening; on end of stdin prints "received <n> unique <m>" (Message-IDs) and exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.smtp_helpers import SmtpServer


def main() -> None:
    cert, key, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    server = SmtpServer(cert, key, port).start()
    print("ready", flush=True)
    sys.stdin.read()
    ids = server.collector.message_ids()
    server.stop()
    print(f"received {len(ids)} unique {len(set(ids))}", flush=True)
    for mid in ids:
        print(mid, flush=True)


if __name__ == "__main__":
    main()
