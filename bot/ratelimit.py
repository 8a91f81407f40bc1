"""Per-user command rate limit: a runaway script or a stuck key must not drown the room or the registry."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    per_minute: int
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # user -> (tokens, last refill)

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 when allowed; otherwise the seconds until the next command is allowed."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        tokens, last = self._state.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1.0 - tokens) / rate
