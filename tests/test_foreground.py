"""The report worker's pause (services/foreground.py) with the real shared memory and a real second thread: it
waits while a command is in flight and until the commands have been quiet for IDLE_S, and its bound is a bound."""

from __future__ import annotations

import errno
import multiprocessing.context
import threading
import time

import pytest

from services.foreground import IDLE_S, MAX_WAIT_S, Foreground, GiveWay


def test_a_pause_lasts_until_the_command_ends_and_the_quiet_after_it() -> None:
    foreground = Foreground()
    pause = GiveWay(foreground.shared)
    returned: list[float] = []

    def wait() -> None:
        pause()
        returned.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    with foreground.busy():
        assert foreground.running == 1
        waiter.start()
    waiter.join(timeout=30)
    assert not waiter.is_alive() and foreground.running == 0
    # Not a timing bound on the machine: the pause cannot return before the command's end plus the quiet time.
    assert returned[0] >= foreground.ended_at + IDLE_S or pause.waited_s >= MAX_WAIT_S
    assert pause.waited_s > 0


def test_a_command_that_never_ends_slows_the_report_down_by_the_bound_only() -> None:
    foreground = Foreground()
    pause = GiveWay(foreground.shared, total_s=0.2)
    with foreground.busy():
        for _ in range(5):
            pause()
    assert pause.waited_s >= 0.2  # the whole budget, spent by the first pauses, then no more
    waited = pause.waited_s
    pause()
    assert pause.waited_s == waited


def test_a_command_waiting_for_background_work_is_set_aside() -> None:
    foreground = Foreground()
    with foreground.busy():
        with foreground.aside():
            assert foreground.running == 0
        assert foreground.running == 1
    assert foreground.running == 0


def test_without_shared_memory_the_bot_counts_alone_and_says_so(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A machine without /dev/shm and without a writable temp dir cannot be made here, so the allocation's failure
    is simulated (the one mock of this file): the bot starts as ever, its worker is given nothing to wait on."""
    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(multiprocessing.context.BaseContext, "RawArray", refused)
    foreground = Foreground()
    assert foreground.for_worker is None
    with foreground.busy():
        assert foreground.running == 1
    assert foreground.running == 0
    assert "no shared memory for the report worker" in caplog.text
