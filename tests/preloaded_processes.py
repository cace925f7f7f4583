"""
Command-line processes of the package that start without importing it again: each is forked from a
server (multiprocessing's forkserver) that imported the package once per test worker. The kill tests
start dozens of runners and sweeps, and a fresh interpreter spends about 3.5 CPU-seconds importing
torch, SB3 and the package before it runs a line of ours; the forked process runs the same ``main``
with the same signal handling, from the same environment. Each test keeps one real ``python -m``
process too (the one that finishes the run), so the interpreter's own start stays covered.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

#: The modules whose ``main`` a preloaded process runs.
MAIN_MODULES = ("sb3_sparse.train", "sb3_sparse.sweep")
#: What the server imports once; ``torch._dynamo`` is what the first optimizer step imports otherwise.
PRELOAD = [*MAIN_MODULES, "torch._dynamo"]

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)


def _main(module: str, argv: list[str], environment: dict[str, str]) -> None:
    """The forked process: the caller's environment, no output (as ``stdout=DEVNULL``), then the module's main."""
    os.environ.clear()
    os.environ.update(environment)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(devnull, stream.fileno())
    importlib.import_module(module).main(argv)


class PreloadedProcess:
    """
    ``subprocess.Popen([sys.executable, "-m", module, *argv], stdout=DEVNULL, stderr=DEVNULL)``, forked
    from the preloading server: the part of Popen's interface the kill tests use.

    :param module: one of :data:`MAIN_MODULES`
    :param argv: its command-line arguments
    """

    def __init__(self, module: str, argv: Sequence[str]) -> None:
        if module not in MAIN_MODULES:  # here, not in the child, whose error would be an exit code with no output
            raise ValueError(f"module must be one of {MAIN_MODULES}, got {module!r}")
        self.args = [sys.executable, "-m", module, *argv]
        self._process: Any = _CONTEXT.Process(target=_main, args=(module, list(argv), dict(os.environ)))
        self._process.start()
        self.pid: int = self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, negative for the signal that ended it (as Popen's); ``None`` while it runs."""
        return self._process.exitcode

    def poll(self) -> int | None:
        """The exit code once it ended, else ``None``."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; :class:`subprocess.TimeoutExpired` after ``timeout`` seconds, as Popen."""
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return self.returncode

    def send_signal(self, number: int) -> None:
        """Send a signal, unless it ended already (as Popen)."""
        if self.returncode is None:
            os.kill(self.pid, number)
