"""Ctrl-C (SIGINT) and SIGTERM, what Slurm and Kubernetes send before they kill, as requests to stop
at the next safe point: the first one is recorded and the work under :func:`stop_on_signals` checks
it (the runner finishes its step, writes a checkpoint and exits 130 or 143). A second Ctrl-C, a
person's, stops at once, as if no handler were there; a second SIGTERM, a machine's, changes
nothing (a scheduler that will not wait sends SIGKILL, and the checkpoints survive that). Torch-free."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: The signals that ask a run or a sweep to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Whether a stop signal came, and which: ``signal`` is ``None`` until the first one."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def name(self) -> str:
        """The signal's name (``"SIGTERM"``), or ``""`` before one came."""
        return "" if self.signal is None else signal.Signals(self.signal).name

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 130 for SIGINT, 143 for SIGTERM."""
        if self.signal is None:
            raise ValueError("no stop signal came")
        return 128 + self.signal


class Interrupted(SystemExit):
    """
    Work that stopped on a signal, after saving what it needs to go on; it exits with the
    signal's code (130, 143).

    :param request: the stop request
    :param message: what was saved and how to go on
    """

    def __init__(self, request: StopRequest, message: str) -> None:
        super().__init__(request.exit_code)
        self.request, self.message = request, message

    def __str__(self) -> str:
        return self.message


@contextmanager
def stop_on_signals(on_first: Callable[[int], None] | None = None, what: str = "the run") -> Iterator[StopRequest]:
    """
    Record SIGINT and SIGTERM in a :class:`StopRequest` for the block (the previous handlers come
    back after it). Signals reach Python's main thread only: elsewhere the request never fills.

    :param on_first: called with the signal number on the first signal (e.g. to pass it on)
    :param what: what stops, for the message printed on the first signal
    :return: the request, for the block to check
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def handle(number: int, frame: Any) -> None:
        if request.signal is not None:
            if number == signal.SIGINT:  # a second Ctrl-C: as if no handler were there
                for stop_signal, handler in previous.items():
                    signal.signal(stop_signal, handler)
                signal.raise_signal(number)
            # Linux sends the parent-death signal once per thread of a killed sweep that exits: ignore repeats.
            print(f"{signal.Signals(number).name} again: {what} is already stopping", file=sys.stderr, flush=True)
            return
        request.signal = number
        print(
            f"{request.name}: {what} stops at the next safe point and saves a checkpoint (Ctrl-C again stops at once)",
            file=sys.stderr,
            flush=True,
        )
        if on_first is not None:
            on_first(number)

    for number in STOP_SIGNALS:
        signal.signal(number, handle)
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
