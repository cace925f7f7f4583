"""One run's directory: its file names, the writers that never leave half a file, the checkpoint,
the run's history log and the lock that keeps two processes out of one run. The runner
(:mod:`sb3_sparse.train`) and the sweep (:mod:`sb3_sparse.sweep`) go through this module only.

What survives a kill, whenever it comes:

* JSON files are written to a temporary file, flushed to disk and renamed over the old one;
* a checkpoint is a complete directory ``checkpoint-<step>/`` before ``checkpoint.json`` names it;
  the pointer is replaced atomically, and older checkpoints are deleted only after it names the
  new one, so there is always a complete checkpoint from the first one on;
* ``progress.csv`` is the history of the training that produced the model: each checkpoint holds
  the rows logged up to its step, and the run's ``progress.csv`` is that history plus the current
  attempt's rows, rewritten atomically at each checkpoint and at the end. Rows of an attempt
  after its last checkpoint describe training that the resumed run redoes, so they are replaced,
  never duplicated; one header (the union of the columns) tops the file;
* ``run.lock`` is held (``flock``) by the process training the run, and released by the kernel
  when that process dies; a process that ends normally deletes it.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, ClassVar

MODEL = "model.zip"
CONFIG = "config.json"
RESULT = "result.json"
DENSITY = "density.txt"
EVALUATIONS_CSV = "evaluations.csv"
EVALUATIONS_PNG = "evaluations.png"
DIAGNOSTICS_PNG = "diagnostics.png"
PROGRESS_CSV = "progress.csv"
#: VecNormalize statistics beside a model (the zoo's name), in the run and in each checkpoint.
VEC_NORMALIZE = "vecnormalize.pkl"
#: A checkpoint's replay buffer (off-policy algorithms).
REPLAY_BUFFER = "replay_buffer.pkl"
#: A checkpoint's evaluations so far (``EvalCallback``'s lists).
CHECKPOINT_EVALUATIONS = "evaluations.json"
#: The current attempt's SB3 log (``progress.csv`` inside), rewritten by each attempt.
LIVE_LOG_DIR = "live"
CHECKPOINT_POINTER = "checkpoint.json"
CHECKPOINT_PREFIX = "checkpoint-"
LOCK = "run.lock"
STEP_KEY = "time/total_timesteps"


class RunLockedError(RuntimeError):
    """Another live process is training this run."""


def write_json_atomic(path: Path, data: Any) -> None:
    """
    Write JSON so that a reader (or a process killed at any moment) sees the old file or the new one.

    :param path: the file
    :param data: JSON-serializable data
    """
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """
    Write a text file through a flushed temporary file renamed over it.

    :param path: the file
    :param text: its content
    """
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file (none when it is missing); a torn last line (a kill mid-write) is dropped."""
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        text = file.read()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(text.splitlines()))


def write_csv_atomic(rows: list[dict[str, Any]], path: Path) -> None:
    """
    Write rows as CSV with one header, the union of their columns in order of appearance, atomically.

    :param rows: the rows
    :param path: the file
    """
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


def _row_step(row: dict[str, str]) -> float:
    text = row.get(STEP_KEY) or ""
    return float(text) if text else float("nan")


class RunDirectory:
    """
    The files of one training run.

    :param path: the run's directory (made when needed)
    """

    #: Run directories whose lock this process holds (the lock is reentrant within a process).
    _held: ClassVar[set[Path]] = set()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_file: IO[str] | None = None

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # --- state ---------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the run ended: its ``result.json`` exists (it is written last)."""
        return (self.path / RESULT).is_file()

    def agent_steps(self) -> int:
        """
        Agent steps trained so far, for progress bars: the result's when the run is finished, else
        the last step the current attempt logged (0 before its first log row).

        :return: agent steps
        """
        if self.finished:
            return int(json.loads((self.path / RESULT).read_text())["agent_steps"])
        steps = [_row_step(row) for row in read_csv_rows(self.live_log_dir / PROGRESS_CSV)]
        return int(max((step for step in steps if not math.isnan(step)), default=0))

    @property
    def started(self) -> bool:
        """Whether anything of a run is here (its configuration, a checkpoint or a result)."""
        return any((self.path / name).exists() for name in (CONFIG, RESULT, CHECKPOINT_POINTER))

    def read_config(self) -> dict[str, Any] | None:
        """The run's stored configuration, or ``None``."""
        path = self.path / CONFIG
        return json.loads(path.read_text()) if path.is_file() else None

    def write_config(self, config: dict[str, Any]) -> None:
        """Store the run's configuration (atomically)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path / CONFIG, config)

    def write_result(self, result: dict[str, Any]) -> None:
        """Store the result: written last, it marks the run finished."""
        write_json_atomic(self.path / RESULT, result)

    def clear(self) -> None:
        """Delete every file of the run (``--restart``); the directory and its lock stay."""
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    # --- lock ------------------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """
        Hold the run's lock for the block.

        :raises RunLockedError: when another live process holds it
        """
        self.path.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        if key in RunDirectory._held:  # the sweep's worker holds it around the runner: reentrant
            yield
            return
        file = self._acquire_lock()
        try:
            file.seek(0)
            file.truncate()
            file.write(f"{os.getpid()}\n")
            file.flush()
            RunDirectory._held.add(key)
            yield
        finally:
            RunDirectory._held.discard(key)
            (self.path / LOCK).unlink(missing_ok=True)  # removed while held: no run.lock outlives its run
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            file.close()

    def _acquire_lock(self) -> IO[str]:
        """
        Open and ``flock`` ``run.lock``. A holder deletes the file before it unlocks, so a lock taken
        on a file that is no longer the one at the path is worthless: then open the new one.

        :raises RunLockedError: when another live process holds it
        """
        while True:
            file = (self.path / LOCK).open("a+")
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                file.close()
                raise RunLockedError(f"{self.path} is being trained by another live process (it holds {LOCK})") from error
            try:
                current = os.stat(self.path / LOCK).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(file.fileno()).st_ino:
                return file
            file.close()  # the previous holder deleted this file after we opened it: try the new one

    # --- checkpoints -----------------------------------------------------------------------------

    def checkpoint(self) -> Path | None:
        """The complete checkpoint directory that ``checkpoint.json`` names, or ``None``."""
        pointer = self.path / CHECKPOINT_POINTER
        if not pointer.is_file():
            return None
        directory = self.path / json.loads(pointer.read_text())["directory"]
        return directory if directory.is_dir() else None

    def checkpoint_step(self) -> int | None:
        """Agent steps of the current checkpoint, or ``None``."""
        pointer = self.path / CHECKPOINT_POINTER
        return int(json.loads(pointer.read_text())["num_timesteps"]) if pointer.is_file() else None

    def new_checkpoint(self, num_timesteps: int) -> Path:
        """
        An empty directory for a checkpoint at ``num_timesteps``; fill it, then :meth:`commit_checkpoint`.

        :param num_timesteps: agent steps
        :return: the directory
        """
        directory = self.path / f"{CHECKPOINT_PREFIX}{num_timesteps:012d}"
        shutil.rmtree(directory, ignore_errors=True)  # a half-written one of a killed attempt
        directory.mkdir(parents=True)
        return directory

    def commit_checkpoint(self, directory: Path, num_timesteps: int) -> None:
        """
        Make a filled checkpoint directory the current one, then delete the others.

        :param directory: from :meth:`new_checkpoint`
        :param num_timesteps: its agent steps
        """
        _fsync_tree(directory)
        write_json_atomic(self.path / CHECKPOINT_POINTER, {"directory": directory.name, "num_timesteps": num_timesteps})
        self.remove_stale_checkpoints()

    def remove_stale_checkpoints(self) -> None:
        """Delete every checkpoint directory but the current one (half-written ones included)."""
        current = self.checkpoint()
        for entry in self.path.glob(f"{CHECKPOINT_PREFIX}*"):
            if entry.is_dir() and entry != current:
                shutil.rmtree(entry, ignore_errors=True)

    def remove_checkpoints(self) -> None:
        """Delete the checkpoints once the run is finished (the pointer first: never a dangling one)."""
        (self.path / CHECKPOINT_POINTER).unlink(missing_ok=True)
        for entry in self.path.glob(f"{CHECKPOINT_PREFIX}*"):
            shutil.rmtree(entry, ignore_errors=True)

    def remove_leftovers(self) -> None:
        """
        Delete what a finished run no longer needs: its checkpoints and the last attempt's live log.
        Called when a run finishes, and again when a finished run is met (a kill between the result
        and this clean-up leaves them behind).
        """
        self.remove_checkpoints()
        shutil.rmtree(self.live_log_dir, ignore_errors=True)

    # --- the history log ---------------------------------------------------------------------------

    @property
    def live_log_dir(self) -> Path:
        """Where the current attempt's SB3 logger writes ``progress.csv``."""
        return self.path / LIVE_LOG_DIR

    def history(self, checkpoint: Path | None) -> list[dict[str, str]]:
        """
        The log rows up to a checkpoint (none without one).

        :param checkpoint: a checkpoint directory
        :return: rows
        """
        return read_csv_rows(checkpoint / PROGRESS_CSV) if checkpoint is not None else []

    def progress_rows(self, history: list[dict[str, str]], up_to_step: int | None = None) -> list[dict[str, str]]:
        """
        The history followed by the current attempt's rows (those up to ``up_to_step``, if given).

        :param history: rows up to the checkpoint the attempt started from
        :param up_to_step: last agent step to include from the current attempt
        :return: rows
        """
        live = read_csv_rows(self.live_log_dir / PROGRESS_CSV)
        if up_to_step is not None:
            live = [row for row in live if not _row_step(row) > up_to_step]
        return history + live

    def write_progress(self, rows: list[dict[str, str]], directory: Path | None = None) -> None:
        """
        Write ``progress.csv`` (into a checkpoint directory, or the run's).

        :param rows: all rows
        :param directory: where (default: the run's directory)
        """
        write_csv_atomic(rows, (directory or self.path) / PROGRESS_CSV)


def _fsync_tree(directory: Path) -> None:
    """Flush every file of a directory to disk, then the directory itself."""
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as file:
                os.fsync(file.fileno())
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
