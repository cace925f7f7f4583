"""One run's directory: its file names, the writers that never leave half a file, the checkpoint,
the run's history log and the lock that keeps two processes out of one run. The runner
(:mod:`sb3_sparse.train`) and the sweep (:mod:`sb3_sparse.sweep`) go through this module only.

What survives a kill, whenever it comes:

* JSON files are written to a temporary file, flushed to disk and renamed over the old one;
* a checkpoint is a complete directory ``checkpoint-<step>/``, its files listed with their sizes
  and SHA-256 in its ``manifest.json`` (written last), before ``checkpoint.json`` names it; the
  pointer is replaced atomically and names the previous checkpoint too, which is kept until a
  newer one is complete: when the latest cannot be read, the run resumes from the previous one;
* ``progress.csv`` is the history of the training that produced the model: each checkpoint holds
  the rows logged up to its step, and the run's ``progress.csv`` is that history plus the current
  attempt's rows, rewritten atomically at each checkpoint and at the end. Rows of an attempt
  after its last checkpoint describe training that the resumed run redoes, so they are replaced,
  never duplicated; one header (the union of the columns) tops the file;
* ``run.lock`` is held (``flock``) by the process training the run, and released by the kernel
  when that process dies; a process that ends normally deletes it.

What a damaged file does: :func:`read_json` raises :class:`DamagedFileError` naming the file and
what to do; :func:`read_csv` keeps every intact row and reports the damaged lines. The runner
repairs what it can rebuild and stops with that message otherwise (docs: "Run directories").
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import shutil
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
#: A checkpoint's replay buffer (off-policy algorithms): its filled part, compressed.
REPLAY_BUFFER = "replay_buffer.pkl"
#: A checkpoint's generators, environments' state and counters (:mod:`sb3_sparse.training_state`).
TRAINING_STATE = "training_state.pkl"
#: A checkpoint's evaluations so far (``EvalCallback``'s lists).
CHECKPOINT_EVALUATIONS = "evaluations.json"
#: The current attempt's SB3 log (``progress.csv`` inside), rewritten by each attempt.
LIVE_LOG_DIR = "live"
CHECKPOINT_POINTER = "checkpoint.json"
CHECKPOINT_PREFIX = "checkpoint-"
#: A checkpoint's list of its files (name -> bytes and SHA-256), written when the rest is complete.
MANIFEST = "manifest.json"
LOCK = "run.lock"
#: A sweep's files beside its run's (:mod:`sb3_sparse.sweep`): its place in the grid, its status, the runner's output.
RUN_FILE, STATUS_FILE, TRAIN_LOG = "run.json", "status.json", "train.log"
#: Every file and folder the runner writes in a run directory (with their ``.partial`` and ``.damaged`` forms,
#: and the checkpoints): all ``--restart`` removes.
RUNNER_FILES = (
    MODEL, CONFIG, RESULT, DENSITY, EVALUATIONS_CSV, EVALUATIONS_PNG, DIAGNOSTICS_PNG, PROGRESS_CSV,
    VEC_NORMALIZE, REPLAY_BUFFER, CHECKPOINT_POINTER, LIVE_LOG_DIR, LOCK,
)  # fmt: skip
STEP_KEY = "time/total_timesteps"
#: The suffix a damaged file is renamed with before the runner rebuilds it: nothing is deleted.
DAMAGED_SUFFIX = ".damaged"


class RunLockedError(RuntimeError):
    """Another live process is training this run."""


class DamagedFileError(RuntimeError):
    """
    A file of a run cannot be read; the message names it, says what is wrong and what to do.

    :param path: the file
    :param problem: what is wrong with it
    :param remedy: what the user can do
    """

    def __init__(self, path: Path, problem: str, remedy: str = "") -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path} is damaged ({problem})" + (f": {remedy}" if remedy else ""))


def read_json(path: Path, remedy: str = "") -> Any:
    """
    A JSON file's content.

    :param path: the file (it must exist)
    :param remedy: what to do when it is damaged, for the message
    :raises DamagedFileError: the file is not valid UTF-8 JSON
    """
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedFileError(path, _short(error), remedy) from error


def set_aside(path: Path) -> Path:
    """
    Rename a damaged file (or directory) to ``<name>.damaged`` (``.damaged-2``, ... when taken): a
    repair never deletes what it replaces.

    :param path: the damaged file
    :return: its new path
    """
    target, number = path.with_name(path.name + DAMAGED_SUFFIX), 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{number}")
    os.replace(path, target)
    return target


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]


def os_error_message(error: OSError) -> str:
    """
    An operating system's refusal as one line: the path, what happened and what to do.

    :param error: the error (a full disk, a read-only folder, a file where a folder should be, ...)
    :return: the line
    """
    remedies = {
        errno.ENOSPC: "free some space, or choose another --output-dir; the last checkpoint stays",
        errno.EDQUOT: "free some space, or choose another --output-dir; the last checkpoint stays",
        errno.EROFS: "choose a writable --output-dir",
        errno.EACCES: "make it writable, or choose another --output-dir",
        errno.EPERM: "make it writable, or choose another --output-dir",
        errno.EEXIST: "it is a file where a folder must go: choose another --output-dir",
        errno.ENOTDIR: "a file stands where a folder must go: choose another --output-dir",
    }
    path = error.filename if error.filename is not None else "a file"
    what = error.strerror or type(error).__name__
    return f"{path}: {what}: {remedies.get(error.errno or 0, 'check the path and the disk, then run the command again')}"


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


@dataclass(frozen=True)
class CsvContent:
    """
    The intact rows of a CSV file and the line numbers (1-based) of the damaged ones.

    :param rows: the rows that parsed whole: valid UTF-8, no NUL byte, one value per column
    :param damaged_lines: lines that did not (a torn last line, stray bytes)
    """

    rows: list[dict[str, str]]
    damaged_lines: list[int]


def read_csv(path: Path) -> CsvContent:
    """
    Read a CSV file line by line, keeping every intact row (none when the file is missing). A line
    is damaged when it is not UTF-8, holds a NUL byte, has another number of values than the
    header, or is the last line and unterminated (a kill mid-write).

    :param path: the file
    :return: its rows and damaged lines
    """
    if not path.is_file():
        return CsvContent([], [])
    lines = path.read_bytes().split(b"\n")
    # The last element is what follows the last newline: empty for a whole file, a torn line else.
    torn = [len(lines)] if lines[-1] else []
    lines = lines[:-1]
    header: list[str] | None = None
    rows, damaged = [], []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8").removesuffix("\r")
            if "\x00" in text:
                raise ValueError("NUL byte")
            values = next(csv.reader([text])) if text else []
        except (UnicodeDecodeError, ValueError, csv.Error):
            if header is None:  # without its header no row can be read
                return CsvContent([], list(range(1, len(lines) + 1)) + torn)
            damaged.append(number)
            continue
        if header is None:
            header = values
        elif len(values) == len(header):
            rows.append(dict(zip(header, values, strict=True)))
        elif values:
            damaged.append(number)
    return CsvContent(rows, damaged + torn)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The intact rows of a CSV file (:func:`read_csv`; none when it is missing)."""
    return read_csv(path).rows


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
        #: The newest checkpoint this object found intact or committed: the next commit's fallback.
        self.intact_checkpoint: Path | None = None

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # --- state ---------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the run ended: its ``result.json`` exists (it is written last)."""
        return (self.path / RESULT).is_file()

    def read_result(self) -> dict[str, Any]:
        """
        The finished run's result.

        :raises DamagedFileError: ``result.json`` cannot be read
        """
        return dict(read_json(self.path / RESULT, f"--resume evaluates {MODEL} again and rewrites it"))

    def agent_steps(self) -> int:
        """
        Agent steps trained so far, for progress bars: the result's when the run is finished, else
        the last step the current attempt logged (0 before its first log row).

        :return: agent steps
        """
        if self.finished:
            try:
                return int(self.read_result()["agent_steps"])
            except (DamagedFileError, KeyError, TypeError, ValueError):
                pass  # the runner repairs it; the log still says how far the run went
        steps = [_row_step(row) for row in read_csv_rows(self.live_log_dir / PROGRESS_CSV)]
        return int(max((step for step in steps if not math.isnan(step)), default=0))

    @property
    def started(self) -> bool:
        """Whether anything of a run is here (its configuration, a model, a result or a checkpoint)."""
        names = (CONFIG, MODEL, RESULT, CHECKPOINT_POINTER)
        return any((self.path / name).exists() for name in names) or bool(self.checkpoint_directories())

    def read_config(self) -> dict[str, Any] | None:
        """
        The run's stored configuration, or ``None``. A damaged ``config.json`` is restored from the
        newest intact checkpoint's copy (the damaged file set aside, with a warning).

        :raises DamagedFileError: it is damaged and no checkpoint holds a copy
        """
        path = self.path / CONFIG
        if not path.is_file():
            return None
        try:
            return dict(read_json(path))
        except DamagedFileError as error:
            copies = [c / CONFIG for c in self.checkpoint_directories() if not self.checkpoint_problems(c)]
            if not copies:
                remedy = "no checkpoint holds a copy; restore it, or --restart to discard the run and train it again"
                raise DamagedFileError(path, error.problem, remedy) from error
            aside = set_aside(path)
            shutil.copyfile(copies[0], path)
            warnings.warn(f"{error}: restored from {copies[0]}; the damaged file is now {aside.name}", stacklevel=2)
            return dict(read_json(path))

    def write_config(self, config: dict[str, Any]) -> None:
        """Store the run's configuration (atomically)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path / CONFIG, config)

    def write_result(self, result: dict[str, Any]) -> None:
        """Store the result: written last, it marks the run finished."""
        write_json_atomic(self.path / RESULT, result)

    def runner_owns(self, name: str) -> bool:
        """Whether the runner wrote the entry ``name`` of the run directory (a file, a checkpoint, the live log)."""
        base = name.split(DAMAGED_SUFFIX)[0].replace(".partial", "")
        return base in RUNNER_FILES or (name.startswith(CHECKPOINT_PREFIX) and (self.path / name).is_dir())

    def foreign_entries(self, runner_files_too: bool = False) -> list[str]:
        """
        The entries of the directory that neither the runner nor a sweep wrote: the user's.

        :param runner_files_too: count files with the runner's names as the user's too (a directory
            that holds no run: its ``evaluations.csv`` is not this run's), all but the lock
        """
        if not self.path.is_dir():
            return []
        sweep_files = (RUN_FILE, STATUS_FILE, TRAIN_LOG)
        return sorted(
            entry.name
            for entry in self.path.iterdir()
            if entry.name.split(DAMAGED_SUFFIX)[0] not in sweep_files
            and entry.name != LOCK
            and (runner_files_too or not self.runner_owns(entry.name))
        )

    def clear(self) -> None:
        """
        Delete the files the runner wrote (``--restart``): :data:`RUNNER_FILES`, their ``.partial``
        and ``.damaged`` forms and the checkpoints. The directory, its lock, a sweep's files and
        anything else stay.
        """
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name == LOCK or not self.runner_owns(entry.name):
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

    def is_training(self) -> bool:
        """Whether a live process holds the run's lock: it trains the run now (read only: no file is made)."""
        if self.path.resolve() in RunDirectory._held:
            return True
        try:
            file = (self.path / LOCK).open()
        except FileNotFoundError:
            return False
        with file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            return False

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

    def _pointer(self) -> dict[str, Any] | None:
        """``checkpoint.json`` (``None`` when missing); raises :class:`DamagedFileError`."""
        path = self.path / CHECKPOINT_POINTER
        if not path.is_file():
            return None
        pointer = read_json(path)
        if not isinstance(pointer, dict) or not isinstance(pointer.get("directory"), str):
            raise DamagedFileError(path, f"no checkpoint directory in {pointer!r}")
        return pointer

    def _readable_pointer(self) -> tuple[dict[str, Any] | None, DamagedFileError | None]:
        """``checkpoint.json`` and ``None``, or ``None`` and why it cannot be read."""
        try:
            return self._pointer(), None
        except DamagedFileError as error:
            return None, error

    def _named_checkpoints(self, pointer: dict[str, Any] | None = None) -> list[Path]:
        """
        The checkpoints ``checkpoint.json`` names, the current one first, then the previous one.

        :param pointer: its content when already read (``None``: read it; a damaged one names none)
        """
        if pointer is None:
            pointer = self._readable_pointer()[0]
        if pointer is None:
            return []
        previous = pointer.get("previous") or {}
        return [self.path / name for name in (pointer["directory"], previous.get("directory")) if name]

    def checkpoint(self) -> Path | None:
        """The checkpoint directory that ``checkpoint.json`` names when it exists (unverified), or ``None``."""
        named = self._named_checkpoints()
        return named[0] if named and named[0].is_dir() else None

    def checkpoint_step(self) -> int | None:
        """Agent steps of the current checkpoint, or ``None``."""
        current = self.checkpoint()
        return None if current is None else _checkpoint_step(current)

    def checkpoint_directories(self) -> list[Path]:
        """Every ``checkpoint-<step>`` directory, newest first (complete or not)."""
        found = [entry for entry in self.path.glob(f"{CHECKPOINT_PREFIX}*") if entry.is_dir()]
        return sorted((entry for entry in found if _checkpoint_step(entry) >= 0), key=_checkpoint_step, reverse=True)

    def checkpoint_problems(self, directory: Path) -> str:
        """
        What keeps a checkpoint from being resumed ("" when it is intact): a missing directory or
        manifest, a file missing or of another size or SHA-256 than its manifest says. The
        checkpoint's ``progress.csv`` is left out: :meth:`history` repairs it row by row.
        A checkpoint of version 0.2.0 (no manifest) is intact when ``checkpoint.json`` names it and
        its model is a whole zip.

        :param directory: the checkpoint
        :return: the problems, or ""
        """
        if not directory.is_dir():
            return "its directory is missing"
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            if directory in self._named_checkpoints()[:1]:  # written before manifests existed
                return _zip_problem(directory / MODEL)
            return f"incomplete (no {MANIFEST})"
        try:
            files = read_json(manifest_path)["files"]
        except (DamagedFileError, KeyError, TypeError) as error:
            return f"{MANIFEST} damaged ({error})"
        problems = (_file_problem(directory / name, expected) for name, expected in files.items() if name != PROGRESS_CSV)
        return "; ".join(problem for problem in problems if problem)

    def resumable_checkpoint(self, skip: Sequence[Path] = ()) -> Path | None:
        """
        The checkpoint to resume from: the one ``checkpoint.json`` names when it is intact, else the
        previous one, else the newest intact one on disk, with a warning that names what is
        damaged. ``None`` when the run has no checkpoint.

        :param skip: checkpoints found intact that failed to load
        :raises DamagedFileError: the run has checkpoints but none is intact
        """
        problems = [f"checkpoint {path} cannot be loaded" for path in skip]
        pointer, damage = self._readable_pointer()
        if damage is not None:
            problems.append(str(damage))
        named = self._named_checkpoints(pointer)
        on_disk = self.checkpoint_directories()
        for candidate in dict.fromkeys([*named, *on_disk]):
            if candidate in skip:
                continue
            problem = self.checkpoint_problems(candidate)
            if not problem:
                self.intact_checkpoint = candidate
                if problems:
                    warnings.warn(
                        f"resuming from {candidate.name} ({_checkpoint_step(candidate):,} agent steps) instead: "
                        + "; ".join(problems),
                        stacklevel=2,
                    )
                return candidate
            if candidate in named or (candidate / MANIFEST).is_file():  # a half-written one of a kill is no news
                problems.append(f"checkpoint {candidate} is damaged: {problem}")
        if problems:
            raise DamagedFileError(
                self.path / CHECKPOINT_POINTER,
                "no intact checkpoint is left: " + "; ".join(problems),
                "--restart discards the run and trains it from step 0",
            )
        return None

    @staticmethod
    def checkpoint_name(num_timesteps: int) -> str:
        """The directory name of the checkpoint at ``num_timesteps`` agent steps."""
        return f"{CHECKPOINT_PREFIX}{num_timesteps:012d}"

    def new_checkpoint(self, num_timesteps: int) -> Path:
        """
        An empty directory for a checkpoint at ``num_timesteps``; fill it, then :meth:`commit_checkpoint`.

        :param num_timesteps: agent steps
        :return: the directory
        """
        directory = self.path / self.checkpoint_name(num_timesteps)
        shutil.rmtree(directory, ignore_errors=True)  # a half-written one of a killed attempt
        directory.mkdir(parents=True)
        return directory

    def commit_checkpoint(self, directory: Path, num_timesteps: int, interrupted_by: str | None = None) -> int:
        """
        Make a filled checkpoint directory the current one: verify its model, write its manifest,
        flush it to disk, point ``checkpoint.json`` at it (and at :attr:`intact_checkpoint`, the one
        resumed from or committed before, kept as the fallback), then delete the others.

        :param directory: from :meth:`new_checkpoint`
        :param num_timesteps: its agent steps
        :param interrupted_by: the signal that made this checkpoint (``"SIGTERM"``), if one did
        :return: the checkpoint's size in bytes
        :raises DamagedFileError: the model just written is not a whole zip (the current checkpoint stays)
        """
        problem = _zip_problem(directory / MODEL)
        if problem:
            raise DamagedFileError(directory / MODEL, problem, "the previous checkpoint stays the current one")
        files: dict[str, dict[str, Any]] = {
            path.relative_to(directory).as_posix(): {"bytes": path.stat().st_size, "sha256": _sha256(path)}
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }
        write_json_atomic(directory / MANIFEST, {"num_timesteps": num_timesteps, "files": files})
        _fsync_tree(directory)
        fallback = self.intact_checkpoint  # the one resumed from or committed last: known intact
        previous = None
        if fallback is not None and fallback != directory and fallback.is_dir():
            previous = {"directory": fallback.name, "num_timesteps": _checkpoint_step(fallback)}
        pointer: dict[str, Any] = {"directory": directory.name, "num_timesteps": num_timesteps, "previous": previous}
        if interrupted_by is not None:
            pointer["interrupted_by"] = interrupted_by
        write_json_atomic(self.path / CHECKPOINT_POINTER, pointer)
        self.intact_checkpoint = directory
        self.remove_stale_checkpoints()
        return sum(int(entry["bytes"]) for entry in files.values())

    def interrupted_by(self) -> str | None:
        """The signal that interrupted the run at its current checkpoint (``"SIGINT"``), or ``None``."""
        pointer = self._readable_pointer()[0]
        return None if pointer is None else pointer.get("interrupted_by")

    def remove_stale_checkpoints(self) -> None:
        """
        Delete every checkpoint directory but the current and the previous one (half-written ones
        included); when ``checkpoint.json`` cannot be read, delete nothing.
        """
        pointer, damage = self._readable_pointer()
        if damage is not None:
            return
        keep = set(self._named_checkpoints(pointer))
        for entry in self.path.glob(f"{CHECKPOINT_PREFIX}*"):
            if entry.is_dir() and entry not in keep:
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
        The log rows up to a checkpoint (none without one). When the checkpoint's ``progress.csv``
        is damaged (lines that do not parse, or other bytes than its manifest lists), the run's
        ``progress.csv`` up to the checkpoint's step replaces it if that copy is intact and holds
        every intact row; else the intact rows are kept. Either way a warning names the file.

        :param checkpoint: a checkpoint directory
        :return: rows
        """
        if checkpoint is None:
            return []
        path = checkpoint / PROGRESS_CSV
        content = read_csv(path)
        changed = _differs_from_manifest(checkpoint, PROGRESS_CSV)
        if not content.damaged_lines and not changed:
            return content.rows
        step = _checkpoint_step(checkpoint)
        run_log = read_csv(self.path / PROGRESS_CSV)
        copy = [row for row in run_log.rows if not _row_step(row) > step]
        damage = f"lines {content.damaged_lines} do not parse" if content.damaged_lines else "it changed after it was written"
        if not run_log.damaged_lines and all(row in copy for row in content.rows) and len(copy) >= len(content.rows):
            repair, rows = f"its {len(copy)} rows are taken from {self.path / PROGRESS_CSV}", copy
        else:
            repair, rows = f"its {len(content.rows)} intact rows are kept, the damaged lines dropped", content.rows
        warnings.warn(f"{path} is damaged ({damage}): {repair}", stacklevel=2)
        return rows

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


def _checkpoint_step(directory: Path) -> int:
    """A checkpoint directory's agent steps, from its name (-1 for a name that is not a checkpoint's)."""
    digits = directory.name.removeprefix(CHECKPOINT_PREFIX)
    return int(digits) if digits.isdigit() else -1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _zip_problem(path: Path) -> str:
    """What is wrong with a zip file ("" when it is whole: every member's CRC checks)."""
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"{path.name} is not a whole zip ({error})"
    return f"{path.name}: member {bad} fails its CRC" if bad else ""


def _file_problem(path: Path, expected: dict[str, Any]) -> str:
    """What differs between a checkpoint's file and its manifest entry ("" when nothing does)."""
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size != expected["bytes"]:
        return f"{path.name} has {size:,} bytes, {expected['bytes']:,} were written"
    return f"{path.name} differs from what was written (SHA-256)" if _sha256(path) != expected["sha256"] else ""


def _differs_from_manifest(directory: Path, name: str) -> bool:
    """Whether a checkpoint's file has other bytes than its manifest lists (no manifest: unknown, no)."""
    try:
        expected = read_json(directory / MANIFEST)["files"][name]
    except (DamagedFileError, FileNotFoundError, KeyError, TypeError):
        return False
    return bool(_file_problem(directory / name, expected))


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
