"""
The ``sb3-sparse`` command: one entry point for the package's tools.

::

    sb3-sparse train --env sb3_sparse/dmc-humanoid-run-v0      # python -m sb3_sparse.train
    sb3-sparse sweep run examples/sweeps/pendulum_cpu.yml       # python -m sb3_sparse.sweep
    sb3-sparse plot diagnostics runs/sac_Pendulum-v1_seed0      # python -m sb3_sparse.plots
    sb3-sparse enjoy runs/sac_Pendulum-v1_entry_a0.8_c0.8_seed0 # python -m sb3_sparse.enjoy
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import NoReturn

COMMANDS = {
    "train": ("sb3_sparse.train", "train one agent on the reference protocol"),
    "sweep": ("sb3_sparse.sweep", "size x sparsity x seed sweeps, locally or on Ray, and their report"),
    "plot": ("sb3_sparse.plots", "plot the evaluations and diagnostics of runs"),
    "enjoy": ("sb3_sparse.enjoy", "play a trained run's policy and print its returns"),
}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line on stderr (no usage block above it), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (--help lists the flags)\n")


def installed_version() -> str:
    """The package's version, read from its installed metadata (no import of torch or SB3)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sb3-sparse")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        from sb3_sparse import __version__

        return __version__


def plain_help(docstring: str | None) -> str:
    """
    A module docstring as ``--help`` text: reStructuredText roles and literals as plain words.

    :param docstring: the docstring
    :return: the text
    """
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", docstring or "")  # :class:`sb3_sparse.x.Y` -> sb3_sparse.x.Y
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return re.sub(r"::$", ":", text, flags=re.MULTILINE)


def usage() -> str:
    """The command's help text."""
    lines = ["usage: sb3-sparse [--version] {" + ",".join(COMMANDS) + "} ...", "", "commands:"]
    lines += [f"  {name:<7}{help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "`sb3-sparse <command> --help` describes each command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """
    Dispatch to a tool's own command line.

    :param argv: arguments (``None``: ``sys.argv[1:]``)
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] in ("-V", "--version"):
        print(f"sb3-sparse {installed_version()}")
        return
    if argv[0] not in COMMANDS:
        sys.exit(f"sb3-sparse: unknown command {argv[0]!r}; valid commands: {', '.join(COMMANDS)}\n\n{usage()}")
    module = importlib.import_module(COMMANDS[argv[0]][0])
    sys.argv = [f"sb3-sparse {argv[0]}", *argv[1:]]  # the tool's --help shows the right program name
    module.main(argv[1:])


if __name__ == "__main__":
    main()
