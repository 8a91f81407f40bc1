"""Per-user command rate limit: a runaway script or a stuck key must not drown the room or the registry.

The bucket lives in the memory of the one active instance: only that instance handles commands (the election in
storage.leader, fenced per claim), so there is nothing to share while it runs, and a database round trip per
command would buy nothing. What the memory lacks after a takeover or a restart is the user's last minute; the
dispatcher reads that from the inbox (every command has its row there) when it first sees the user, and ``seed``
starts the bucket from it, so a takeover does not hand a runaway script a fresh bucket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

WINDOW_S = 60.0  # the bucket refills per_minute tokens in this long


@dataclass
class TokenBucket:
    per_minute: int
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # user -> (tokens, last refill)

    def knows(self, key: str) -> bool:
        """Whether this process has a bucket for ``key`` (else: seed it first), or the limit is off."""
        return self.per_minute <= 0 or key in self._state

    def seed(self, key: str, recent: int, now: float | None = None) -> None:
        """Start ``key``'s bucket as if its ``recent`` commands of the last minute had been taken here (an upper
        bound of what they used: refill during that minute is not credited)."""
        now = time.monotonic() if now is None else now
        self._state[key] = (max(0.0, float(self.per_minute - recent)), now)

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 when allowed; otherwise the seconds until the next command is allowed."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / WINDOW_S
        tokens, last = self._state.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1.0 - tokens) / rate
