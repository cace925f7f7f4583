"""Scaling studies: algorithm x env x size x sparsity x topology x seed sweeps, run locally or on a Ray cluster.

A sweep file (YAML) names the grid; every run is one job of the package's runner
(:mod:`sb3_sparse.train`) in its own directory, named by its configuration, under the sweep's
output directory::

    python -m sb3_sparse.sweep run examples/sweeps/pendulum_cpu.yml                 # local process pool
    python -m sb3_sparse.sweep run study.yml --backend ray --address auto --gpus-per-run 0.25
    python -m sb3_sparse.sweep report runs/sweeps/pendulum_cpu                       # table, aggregates, plots

A re-run of the same sweep skips finished runs (those with a ``result.json``), resumes unfinished
ones from their last checkpoint, and never touches a finished result; a run that fails is recorded
with its error in its ``status.json`` and the others go on. The report writes ``runs.csv`` (one
row per run: configuration, status, parameter counts, final return and final diagnostics),
``evaluations.csv`` (one row per evaluation), ``aggregates.csv`` (IQM and 95% bootstrap
confidence intervals over seeds, and over tasks for DMC tasks, with rliable) and the paper's plots.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from tqdm.auto import tqdm

from sb3_sparse.algorithms import algorithm_entry
from sb3_sparse.checks import ConfigurationError, check_int, is_fraction, plain_numbers
from sb3_sparse.cli import OneLineErrorParser, plain_help
from sb3_sparse.hyperparams import ALGORITHMS, ZOO_ALGORITHMS, hyperparams_entry, unknown_algorithm_message
from sb3_sparse.interrupts import Interrupted, StopRequest, stop_on_signals
from sb3_sparse.presets import SIZE_PRESETS
from sb3_sparse.run_directory import (
    RUN_FILE,
    STATUS_FILE,
    TRAIN_LOG,
    DamagedFileError,
    RunDirectory,
    RunLockedError,
    read_json,
    set_aside,
    write_json_atomic,
)
from sb3_sparse.sweep_report import report, run_status
from sb3_sparse.topology import TOPOLOGIES, TopologySchedule

if TYPE_CHECKING:
    from sb3_sparse.run_config import RunConfig


@dataclass(frozen=True)
class RunSpec:
    """
    One run of a sweep.

    :param algo: algorithm (a key of :data:`sb3_sparse.hyperparams.ZOO_ALGORITHMS`)
    :param env: gymnasium id
    :param preset: size preset (:data:`sb3_sparse.presets.SIZE_PRESETS`)
    :param actor_sparsity: actor sparsity
    :param critic_sparsity: critic sparsity
    :param seed: seed
    :param topology: ``"static"`` or a dynamic rule of :mod:`sb3_sparse.topology`
    """

    algo: str
    env: str
    preset: str
    actor_sparsity: float
    critic_sparsity: float
    seed: int
    topology: str = "static"

    @property
    def name(self) -> str:
        """Directory name: the configuration, readable (the actor's sparsity where there is an actor,
        not DQN's or QR-DQN's; the topology when it is not static)."""
        actor = "" if algorithm_entry(self.algo).family == "value_based" else f"_a{self.actor_sparsity:g}"
        return self._name(actor)

    @property
    def earlier_name(self) -> str:
        """The name before sb3-sparse 0.3, where every run carried ``_a<S>`` (a sweep keeps a run's folder of it)."""
        return self._name(f"_a{self.actor_sparsity:g}")

    def _name(self, actor: str) -> str:
        env = self.env.replace("/", "-")
        topology = "" if self.topology == "static" else f"_{self.topology}"
        return f"{self.algo}_{env}_{self.preset}{actor}_c{self.critic_sparsity:g}{topology}_seed{self.seed}"


@dataclass
class Sweep:
    """
    A sweep: the grid and how each run trains. Every list is crossed with the others.

    :param name: the sweep's name (its default output directory is ``runs/sweeps/<name>``)
    :param envs: gymnasium ids, each with an entry in the hyperparameter file
    :param algo: algorithm
    :param presets: size presets
    :param sparsities: sparsity levels applied to actor and critic alike (0.0 is the dense baseline)
    :param actor_sparsities: actor sparsities to cross with ``critic_sparsities`` (either one set:
        the other defaults to ``sparsities``; neither set: actor and critic share each level)
    :param critic_sparsities: critic sparsities to cross with ``actor_sparsities``
    :param topologies: mask topologies: ``"static"`` (the entry's masks, drawn once) and the dynamic
        rules ``"set"``, ``"rigl"``, ``"gmp"`` (:mod:`sb3_sparse.topology`); a dynamic rule skips the
        dense sparsity level
    :param topology_kwargs: per dynamic rule, its ``topology_kwargs`` (e.g. ``{"set": {"update_interval": 500}}``)
    :param seeds: seeds
    :param timesteps: agent steps per run (``None``: each entry's ``n_timesteps``)
    :param conf: a zoo-format hyperparameter file (``None``: the package's)
    :param checkpoint_freq: agent steps between checkpoints (0: an interrupted run starts over)
    :param run_settings: more :class:`~sb3_sparse.train.RunConfig` fields for every run, e.g.
        ``{"eval_episodes": 5, "diagnostics_freq": 1000}``
    :param runner_args: the same as the runner's options, e.g. ``["--eval-episodes", "5"]`` (read
        once into ``run_settings``)
    :param gym_packages: modules to import in every worker before making the environments
    :param output_dir: where the runs go (``None``: ``runs/sweeps/<name>``)
    """

    name: str
    envs: list[str]
    algo: str = "sac"
    presets: list[str] = field(default_factory=lambda: ["base"])
    sparsities: list[float] = field(default_factory=lambda: [0.0, 0.8])
    actor_sparsities: list[float] | None = None
    critic_sparsities: list[float] | None = None
    topologies: list[str] = field(default_factory=lambda: ["static"])
    topology_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    timesteps: int | None = None
    conf: str | None = None
    checkpoint_freq: int = 0
    run_settings: dict[str, Any] = field(default_factory=dict)
    runner_args: list[str] = field(default_factory=list)
    gym_packages: list[str] = field(default_factory=list)
    output_dir: str | None = None

    def __post_init__(self) -> None:
        for each in fields(self):  # numpy scalars (numpy grids) become the numbers they print as
            setattr(self, each.name, plain_numbers(getattr(self, each.name)))
        if self.algo not in ZOO_ALGORITHMS:
            if self.algo in ALGORITHMS:  # StreamAC's networks have no SimBa size presets
                raise ValueError(
                    f"sweeps scale SimBa networks with size presets; {self.algo!r} has none "
                    "(examples/stream_ac_sparsity.py compares StreamAC's sparsities and widths)"
                )
            raise ValueError(unknown_algorithm_message(self.algo, list(ZOO_ALGORITHMS), what="algo"))
        for name in ("envs", "presets", "sparsities", "seeds", "topologies", "actor_sparsities", "critic_sparsities"):
            value = getattr(self, name)
            if (value is not None or name not in ("actor_sparsities", "critic_sparsities")) and (
                not isinstance(value, list) or not value
            ):
                raise ValueError(f"{name} must be a non-empty list, got {value!r}")
        unknown = [preset for preset in self.presets if preset not in SIZE_PRESETS]
        if unknown:
            raise ValueError(f"unknown presets {unknown}; valid presets: {', '.join(SIZE_PRESETS)}")
        unknown = [topology for topology in self.topologies if topology not in TOPOLOGIES]
        if unknown:
            raise ValueError(f"unknown topologies {unknown}; valid topologies: {', '.join(TOPOLOGIES)}")
        family = algorithm_entry(self.algo).family
        if family == "streaming" and self.topologies != ["static"]:
            raise ValueError(f"{self.algo} keeps its masks static: topologies must be ['static'], got {self.topologies}")
        if family == "value_based" and self.actor_sparsities is not None:
            raise ValueError(f"{self.algo} has no actor: actor_sparsities must be None, got {self.actor_sparsities}")
        if not isinstance(self.topology_kwargs, dict):
            raise ValueError(f"topology_kwargs must map a topology to its arguments, got {self.topology_kwargs!r}")
        for topology, kwargs in self.topology_kwargs.items():
            if topology not in self.topologies or topology == "static":
                raise ValueError(f"topology_kwargs names {topology!r}, which is not a dynamic topology of {self.topologies}")
            TopologySchedule.create(topology, kwargs)  # bad arguments fail now, not in a worker
        for name in ("sparsities", "actor_sparsities", "critic_sparsities"):
            levels = getattr(self, name) or []
            bad = [s for s in levels if not is_fraction(s)]
            if bad:
                raise ValueError(f"{name} must be in [0, 1), got {bad}")
        from sb3_sparse.run_config import MAX_RUN_SEED

        self.seeds = [check_int("seeds", seed, minimum=0, maximum=MAX_RUN_SEED) for seed in self.seeds]
        if self.timesteps is not None:
            self.timesteps = check_int("timesteps", self.timesteps)
        self.checkpoint_freq = check_int("checkpoint_freq", self.checkpoint_freq, minimum=0)
        from sb3_sparse.train import RunConfig

        grid = {
            "algo",
            "env",
            "preset",
            "actor_sparsity",
            "critic_sparsity",
            "topology",
            "topology_kwargs",
            "seed",
            "timesteps",
        }
        grid.add("conf")
        owned = {"output_dir", "resume", "restart", "checkpoint_freq", "num_threads"}  # num_threads: --threads-per-run
        allowed = sorted({f.name for f in fields(RunConfig)} - grid - owned)
        unknown = sorted(set(self.settings()) - set(allowed))
        if unknown:
            raise ValueError(f"run_settings has unknown or grid-owned fields {unknown}; valid ones: {', '.join(allowed)}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> Sweep:
        """
        Read a sweep file.

        :param path: YAML file with the fields of :class:`Sweep`
        :return: the sweep
        """
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a sweep file maps field names to values, got {type(data).__name__}")
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"{path}: unknown sweep fields {unknown}; valid fields: {', '.join(valid)}")
        data.setdefault("name", Path(path).stem)
        return cls(**data)

    @property
    def root(self) -> Path:
        """The sweep's output directory."""
        return Path(self.output_dir) if self.output_dir else Path("runs") / "sweeps" / self.name

    def run_dir(self, run: RunSpec) -> Path:
        """
        A run's folder: ``<root>/<run.name>``, or the folder of its earlier name where a sweep
        from before sb3-sparse 0.3 left it (DQN's runs carried ``_a<S>``), so that it is resumed, not
        started again beside it.

        :param run: the run
        :return: the folder
        """
        directory, earlier = self.root / run.name, self.root / run.earlier_name
        return earlier if earlier.is_dir() and not directory.exists() else directory

    def runs(self) -> list[RunSpec]:
        """Every run of the grid, in a stable order."""
        if self.actor_sparsities is None and self.critic_sparsities is None:
            pairs = [(sparsity, sparsity) for sparsity in self.sparsities]
        else:
            actor, critic = self.actor_sparsities or self.sparsities, self.critic_sparsities or self.sparsities
            pairs = [(a, c) for a in actor for c in critic]
        return [
            RunSpec(self.algo, env, preset, float(actor_sparsity), float(critic_sparsity), seed, topology)
            for env in self.envs
            for preset in self.presets
            for actor_sparsity, critic_sparsity in pairs
            for topology in self.topologies
            for seed in self.seeds
            if topology == "static" or actor_sparsity or critic_sparsity  # nothing to move in a dense network
        ]

    def run_config(self, run: RunSpec, run_dir: Path, num_threads: int | None = None) -> RunConfig:
        """
        The runner's configuration of one run (resumed from its checkpoint when it has one).

        :param run: the run
        :param run_dir: its directory
        :param num_threads: torch threads of the run (``None``: the runner's default)
        :return: the configuration for :func:`sb3_sparse.train.run`
        """
        from sb3_sparse.train import RunConfig

        return RunConfig(
            **{
                **self.settings(),
                "algo": run.algo,
                "env": run.env,
                "preset": run.preset,
                # A Q-network (DQN, QR-DQN) has no actor: the level is its critic's.
                "actor_sparsity": None if algorithm_entry(run.algo).family == "value_based" else run.actor_sparsity,
                "critic_sparsity": run.critic_sparsity,
                # static: the entry's topology (none of the package's entries sets one)
                "topology": None if run.topology == "static" else run.topology,
                "topology_kwargs": self.topology_kwargs.get(run.topology),
                "seed": run.seed,
                "timesteps": self.timesteps,
                "conf": self.conf,
                "checkpoint_freq": self.checkpoint_freq,
                "output_dir": str(run_dir),
                "resume": True,
                "progress_bar": False,
                "num_threads": num_threads,
            }
        )

    def settings(self) -> dict[str, Any]:
        """``run_settings`` with the options of ``runner_args`` read into it (the grid's fields excluded)."""
        settings = dict(self.run_settings)
        if self.runner_args:
            from sb3_sparse.train import RunConfig, parse_args

            parsed, default = asdict(parse_args([str(arg) for arg in self.runner_args])), asdict(RunConfig())
            settings.update({key: value for key, value in parsed.items() if value != default[key]})
        return settings


def dry_run(sweep: Sweep, workers: int, threads_per_run: int = 1, probe_steps: int = 200) -> list[str]:
    """
    What ``sweep run`` would do, without doing it: the runs left, their agent steps, and the time
    they would take, estimated from a probe: for each size preset, its first run left, built as the
    runner builds it, learns ``probe_steps`` agent steps from the first (``learning_starts`` 0) in
    this process with ``threads_per_run`` threads (:func:`sb3_sparse.train.probe_step_seconds`).
    The estimate leaves out evaluations, and assumes the other runs of a preset cost what its probe
    did (sparsity levels, environments and topologies can differ).

    :param sweep: the sweep
    :param workers: runs at a time
    :param threads_per_run: torch threads of each run
    :param probe_steps: agent steps timed per preset
    :return: the lines to print
    """
    import torch as th

    from sb3_sparse.train import probe_step_seconds

    runs = sweep.runs()
    left = [run for run in runs if run_status(sweep.run_dir(run))["status"] != "finished"]
    lines = [f"{sweep.name}: {len(runs)} runs, {len(runs) - len(left)} finished, {len(left)} to run"]
    if not left:
        return lines
    previous = th.get_num_threads()
    th.set_num_threads(threads_per_run)
    seconds, steps = 0.0, 0
    try:
        for preset in dict.fromkeys(run.preset for run in left):
            probe = next(run for run in left if run.preset == preset)
            config = replace(sweep.run_config(probe, sweep.run_dir(probe)), output_dir=None, resume=False)
            per_step, budget = probe_step_seconds(config, probe_steps)
            of_preset = [run for run in left if run.preset == preset]
            steps += budget * len(of_preset)
            seconds += per_step * budget * len(of_preset)
            lines.append(
                f"  {preset}: {1e3 * per_step:.1f} ms per agent step (probe: {probe.name}, {probe_steps} steps), "
                f"{len(of_preset)} runs of {budget:,} agent steps"
            )
    finally:
        th.set_num_threads(previous)
    parallel = min(workers, len(left))
    lines.append(
        f"{steps:,} agent steps; estimate {seconds / parallel / 3600:.1f} hours with {parallel} runs at a time of "
        f"{threads_per_run} thread(s), evaluations not included"
    )
    lines.append("nothing was trained or written; run it without --dry-run")
    return lines


#: The sweep's settings at its root, written at each ``sweep run`` (read by ``report`` and people).
SWEEP_FILE = "sweep.json"


def execute_run(sweep: Sweep, run: RunSpec, threads: int = 1) -> dict[str, Any]:
    """
    Train one run unless it is finished or another live process trains it; record its status.
    Runs in a worker process or a Ray task, holding the run's lock from start to end.

    :param sweep: the sweep
    :param run: the run
    :param threads: torch intra-op threads for this run
    :return: ``{"name", "status", "error"}`` with status ``finished``, ``skipped``, ``busy``,
        ``interrupted`` (a signal stopped it after a checkpoint) or ``failed``
    """
    import torch

    directory = RunDirectory(sweep.run_dir(run))
    try:
        with directory.locked():
            if run_status(directory.path)["status"] == "finished":  # a damaged result goes to the runner, which rebuilds it
                directory.remove_leftovers()
                return {"name": run.name, "status": "skipped", "error": None}
            return _execute_locked(sweep, run, directory, threads, torch)
    except RunLockedError as error:
        return {"name": run.name, "status": "busy", "error": str(error)}


def _read_status(directory: RunDirectory) -> dict[str, Any]:
    """The run's ``status.json`` (empty when missing; a damaged one is set aside: the sweep rewrites it)."""
    path = directory / STATUS_FILE
    if not path.is_file():
        return {}
    try:
        return dict(read_json(path))
    except DamagedFileError as error:
        warnings.warn(f"{error}: set aside as {set_aside(path).name}; the sweep writes it again", stacklevel=2)
        return {}


def _execute_locked(sweep: Sweep, run: RunSpec, directory: RunDirectory, threads: int, torch: Any) -> dict[str, Any]:
    torch.set_num_threads(threads)
    write_json_atomic(directory / RUN_FILE, asdict(run))
    status_path = directory / STATUS_FILE
    attempts = int(_read_status(directory).get("attempts", 0))
    write_json_atomic(status_path, {"status": "running", "attempts": attempts + 1, "pid": os.getpid()})
    try:
        # The runner's output goes to the run's train.log; the sweep's console shows the progress bar.
        with (directory / TRAIN_LOG).open("a") as log, redirect_stdout(log), redirect_stderr(log):
            for package in sweep.gym_packages:
                importlib.import_module(package)
            from sb3_sparse import train

            train.run(sweep.run_config(run, directory.path, threads))
    except Interrupted as stopped:  # a checkpoint holds where it stopped: the next `sweep run` goes on
        write_json_atomic(status_path, {"status": "interrupted", "attempts": attempts + 1, "error": str(stopped)})
        return {"name": run.name, "status": "interrupted", "error": str(stopped)}
    except BaseException as error:  # SystemExit from bad input included: the sweep goes on
        if isinstance(error, KeyboardInterrupt):
            raise
        message = f"{type(error).__name__}: {error}"
        failure = {"status": "failed", "attempts": attempts + 1, "error": message, "traceback": traceback.format_exc()}
        write_json_atomic(status_path, failure)
        return {"name": run.name, "status": "failed", "error": message}
    write_json_atomic(status_path, {"status": "finished", "attempts": attempts + 1})
    return {"name": run.name, "status": "finished", "error": None}


def _record_death(sweep: Sweep, run: RunSpec, message: str) -> dict[str, Any]:
    """Record a run whose process died without writing its own status (unless another live process trains it)."""
    directory = RunDirectory(sweep.run_dir(run))
    if directory.finished:
        return {"name": run.name, "status": "finished", "error": None}
    try:
        with directory.locked():
            write_json_atomic(directory / STATUS_FILE, {**_read_status(directory), "status": "failed", "error": message})
    except RunLockedError as error:
        return {"name": run.name, "status": "busy", "error": str(error)}
    return {"name": run.name, "status": "failed", "error": message}


def _die_with_parent(parent: int) -> None:
    """
    Ask Linux to SIGTERM this process when the process that started it dies (a killed sweep
    leaves no run behind); elsewhere nothing happens.

    :param parent: the pid of the sweep that started this process
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the sweep died while this process started: the request came too late
        os.kill(os.getpid(), signal.SIGTERM)


class RunProcesses:
    """
    The local backend's run processes: each starts in its own session, so that a Ctrl-C in the
    terminal reaches the sweep only, which passes it on once (:meth:`stop`); no run starts after.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self.stopping = False

    def execute(self, sweep: Sweep, run: RunSpec, threads: int) -> dict[str, Any]:
        """
        Run :func:`execute_run` in a new Python process and read back its status (none started once
        stopping). The process gets the sweep's settings on its command line, never from a file that
        a later command could rewrite while it starts.
        """
        command = [sys.executable, "-m", "sb3_sparse.sweep", "execute", json.dumps(asdict(sweep)), run.name]
        command += ["--threads", str(threads), "--parent-pid", str(os.getpid())]
        with self._lock:
            if self.stopping:
                return {"name": run.name, "status": "not started", "error": None}
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
            )
            self._running.add(process)
        try:
            stdout, stderr = process.communicate()
        finally:
            with self._lock:
                self._running.discard(process)
        if process.returncode != 0:
            return _record_death(sweep, run, f"the run's process exited with code {process.returncode}: {stderr[-500:]}")
        return dict(json.loads(stdout.strip().splitlines()[-1]))

    def stop(self, number: int) -> None:
        """Start no more runs and pass the signal to the running ones (each checkpoints and exits)."""
        with self._lock:
            self.stopping = True
            for process in self._running:
                process.send_signal(number)


class SweepProgress:
    """
    The sweep's progress bar, in agent steps over all its runs: finished runs count their steps,
    running ones the last step their log reached (it moves at each of SB3's log dumps and evaluations).

    :param sweep: the sweep
    :param runs: its runs
    :param enabled: show the bar
    """

    #: Seconds between two looks at the running runs' logs.
    POLL_SECONDS = 2.0

    def __init__(self, sweep: Sweep, runs: list[RunSpec], enabled: bool) -> None:
        self.directories = [RunDirectory(sweep.run_dir(run)) for run in runs]
        tasks = {(run.algo, run.env) for run in runs}  # one read of the hyperparameter file per task, not per run
        budget_of = {task: self._budget(sweep, *task) for task in tasks}
        self.budgets = budgets = [budget_of[run.algo, run.env] for run in runs]
        self.results: list[dict[str, Any]] = []
        self.bar = tqdm(
            total=sum(budgets), desc=f"sweep {sweep.name}", unit="step", unit_scale=True, disable=not enabled, smoothing=0
        )

    @staticmethod
    def _budget(sweep: Sweep, algo: str, env: str) -> int:
        """A run's agent steps: the sweep's, else its entry's (0 for an entry that is missing: the run fails and says so)."""
        if sweep.timesteps is not None:
            return sweep.timesteps
        try:
            return int(hyperparams_entry(algo, env, sweep.conf)["n_timesteps"])
        except (ValueError, KeyError):
            return 0

    def update(self, new_results: Sequence[dict[str, Any]] = ()) -> None:
        """Record finished runs' results and move the bar to the steps trained so far."""
        self.results.extend(new_results)
        steps = sum(
            min(directory.agent_steps(), budget) for directory, budget in zip(self.directories, self.budgets, strict=True)
        )
        self.bar.n = steps
        last = f", last: {self.results[-1]['name']} {self.results[-1]['status']}" if self.results else ""
        self.bar.set_postfix_str(f"{len(self.results)}/{len(self.directories)} runs{last}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


def run_sweep(
    sweep: Sweep,
    backend: str = "local",
    workers: int | None = None,
    threads_per_run: int = 1,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    progress_bar: bool = True,
) -> list[dict[str, Any]]:
    """
    Run every unfinished run of a sweep.

    :param sweep: the sweep
    :param backend: ``"local"`` (a process pool) or ``"ray"`` (one Ray task per run)
    :param workers: local backend: parallel runs (default: CPU cores divided by ``threads_per_run``)
    :param threads_per_run: torch threads of each run
    :param address: Ray backend: cluster address (``"auto"`` joins a running cluster; ``None`` starts a local one)
    :param cpus_per_run: Ray backend: CPUs reserved per run
    :param gpus_per_run: Ray backend: GPUs (a fraction is allowed) reserved per run
    :param progress_bar: show a progress bar in agent steps over all runs (:class:`SweepProgress`)
    :return: one ``{"name", "status", "error"}`` per run
    :raises Interrupted: SIGINT or SIGTERM stopped the sweep (its running runs stopped at a checkpoint)
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    if backend == "ray" and importlib.util.find_spec("ray") is None:  # before anything is written
        raise ImportError("the Ray backend needs Ray: pip install 'sb3-sparse[ray]'")
    if threads_per_run < 1:
        raise ValueError(f"threads_per_run must be >= 1, got {threads_per_run}")
    # Absolute paths: Ray workers (and a cluster's other nodes, on a shared filesystem) need them.
    sweep = replace(
        sweep,
        output_dir=str(sweep.root.resolve()),
        conf=str(Path(sweep.conf).resolve()) if sweep.conf is not None else None,
    )
    runs = sweep.runs()
    _check_run_settings(sweep, runs)
    _refuse_other_sweep(sweep)
    sweep.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(sweep.root / SWEEP_FILE, asdict(sweep))
    for run in runs:  # every run is a row of the report, even one whose process dies before it starts
        sweep.run_dir(run).mkdir(exist_ok=True)
        write_json_atomic(sweep.run_dir(run) / RUN_FILE, asdict(run))
    progress = SweepProgress(sweep, runs, progress_bar)
    if backend == "local":
        workers = workers or max(1, (os.cpu_count() or 1) // threads_per_run)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        processes = RunProcesses()
        # One fresh interpreter per run: a run that dies (out of memory, killed) cannot take the others down.
        with stop_on_signals(processes.stop, what="the sweep") as stop, ThreadPoolExecutor(max_workers=workers) as pool:
            pending: set[Future[dict[str, Any]]] = {
                pool.submit(processes.execute, sweep, run, threads_per_run) for run in runs
            }
            while pending:
                done, pending = wait(pending, timeout=progress.POLL_SECONDS, return_when=FIRST_COMPLETED)
                progress.update([future.result() for future in done])
    else:
        stop = _run_on_ray(sweep, runs, progress, threads_per_run, address, cpus_per_run, gpus_per_run)
    progress.close()
    if stop.signal is not None:
        interrupted = [result["name"] for result in progress.results if result["status"] == "interrupted"]
        message = (
            f"{stop.name}: the sweep stopped; {len(interrupted)} runs stopped at a checkpoint, "
            f"{sum(result['status'] == 'not started' for result in progress.results)} did not start. "
            "The same command goes on from there"
        )
        print(message, file=sys.stderr, flush=True)
        raise Interrupted(stop, message)
    return progress.results


def _check_run_settings(sweep: Sweep, runs: list[RunSpec]) -> None:
    """
    Every run's configuration, and the ``hyperparams`` of ``run_settings``, checked before anything
    is written: a bad value is one refusal here, not a failure in every run.

    :raises ConfigurationError: naming the field and the value
    """
    from sb3_sparse.hyperparams.values import check_entry_values

    try:
        for run in runs:
            sweep.run_config(run, sweep.run_dir(run))
        check_entry_values(sweep.settings().get("hyperparams") or {}, f"sweep {sweep.name}: run_settings.hyperparams")
    except ValueError as error:
        raise ConfigurationError(f"sweep {sweep.name}: {error}") from error


def _refuse_other_sweep(sweep: Sweep) -> None:
    """
    A folder holds one sweep: refuse one whose settings differ from the ``sweep.json`` there (a
    damaged one is set aside: this sweep writes it again).

    :raises ConfigurationError: naming each differing field
    """
    path = sweep.root / SWEEP_FILE
    if not path.is_file():
        return
    try:
        stored = dict(read_json(path))
    except (DamagedFileError, TypeError, ValueError) as error:
        warnings.warn(f"{error}: set aside as {set_aside(path).name}", stacklevel=3)
        return
    from sb3_sparse.resume import configuration_differences

    differences = configuration_differences(stored, asdict(sweep))
    if differences:
        raise ConfigurationError(
            f"{sweep.root} holds another sweep ({path}): {'; '.join(differences)}. "
            "Use another output_dir, or the same settings to go on with it"
        )


def _run_on_ray(
    sweep: Sweep,
    runs: list[RunSpec],
    progress: SweepProgress,
    threads_per_run: int,
    address: str | None,
    cpus_per_run: float,
    gpus_per_run: float,
) -> StopRequest:
    """One Ray task per run; on a stop signal the unfinished tasks are cancelled (they resume from their last checkpoint)."""
    import ray

    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    # No retries: a crashed run is recorded as failed, and the next `run` resumes it from its checkpoint.
    remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(execute_run)
    with stop_on_signals(what="the sweep") as stop:
        tasks = {remote.remote(sweep, run, threads_per_run): run for run in runs}
        while tasks and stop.signal is None:
            ready, _ = ray.wait(list(tasks), num_returns=1, timeout=progress.POLL_SECONDS)
            finished = []
            for task in ready:
                run = tasks.pop(task)
                try:
                    finished.append(ray.get(task))
                except ray.exceptions.RayError as error:  # the worker process died
                    finished.append(_record_death(sweep, run, f"{type(error).__name__}: {error}"))
            progress.update(finished)
        for task, run in tasks.items():
            ray.cancel(task)
            progress.update([{"name": run.name, "status": "interrupted", "error": f"cancelled on {stop.name}"}])
    return stop


def main(argv: list[str] | None = None) -> dict[str, Path] | list[dict[str, Any]]:
    """
    Command line entry point (``python -m sb3_sparse.sweep`` or ``sb3-sparse sweep``).

    :param argv: arguments (``None``: ``sys.argv``)
    :return: the report's files
    """
    parser = OneLineErrorParser(
        prog="sb3-sparse sweep", description=plain_help(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or finish) a sweep, then report")
    run.add_argument("sweep_file", type=Path)
    run.add_argument("--output-dir", default=None, help="overrides the sweep file's output_dir")
    run.add_argument("--backend", choices=["local", "ray"], default="local")
    run.add_argument("--workers", type=int, default=None, help="local: parallel runs (default: cores / threads per run)")
    run.add_argument("--threads-per-run", type=int, default=1)
    run.add_argument("--address", default=None, help="ray: cluster address ('auto' joins a running cluster)")
    run.add_argument("--cpus-per-run", type=float, default=1.0)
    run.add_argument("--gpus-per-run", type=float, default=0.0)
    run.add_argument("--no-progress-bar", action="store_true")
    run.add_argument("--no-report", action="store_true")
    run.add_argument(
        "--dry-run", action="store_true", help="print the runs, their agent steps and a time estimate from a short probe"
    )
    execute = commands.add_parser("execute", help="(internal) train one run of a sweep in this process")
    execute.add_argument("sweep_settings", help="the sweep's settings as JSON")
    execute.add_argument("run_name")
    execute.add_argument("--threads", type=int, default=1)
    execute.add_argument("--parent-pid", type=int, default=None, help="end this run when that process ends")
    summary = commands.add_parser("report", help="tables, aggregates and plots of a sweep directory")
    summary.add_argument("root", type=Path)
    summary.add_argument("--reps", type=int, default=2000, help="bootstrap replications")
    args = parser.parse_args(argv)
    if args.command == "report":
        return report(args.root, reps=args.reps)
    if args.command == "execute":
        if args.parent_pid is not None:
            _die_with_parent(args.parent_pid)
        sweep = Sweep(**json.loads(args.sweep_settings))
        (spec,) = [spec for spec in sweep.runs() if spec.name == args.run_name]
        result = execute_run(sweep, spec, args.threads)
        print(json.dumps(result))  # the last line of stdout: read by the sweep's process
        return result
    try:
        sweep = Sweep.from_yaml(args.sweep_file)
    except (OSError, ValueError, TypeError) as error:
        parser.error(str(error))
    if args.output_dir is not None:
        sweep.output_dir = args.output_dir
    if args.dry_run:
        workers = args.workers or max(1, (os.cpu_count() or 1) // args.threads_per_run)
        lines = dry_run(sweep, workers, args.threads_per_run)  # a Ray cluster: pass its parallel runs as --workers
        print("\n".join(lines), flush=True)
        return []
    try:
        results = run_sweep(
            sweep,
            backend=args.backend,
            workers=args.workers,
            threads_per_run=args.threads_per_run,
            address=args.address,
            cpus_per_run=args.cpus_per_run,
            gpus_per_run=args.gpus_per_run,
            progress_bar=not args.no_progress_bar,
        )
    except ConfigurationError as error:
        print(f"sb3-sparse sweep: error: {error}", file=sys.stderr, flush=True)
        raise
    written = None if args.no_report else report(sweep.root)
    failed = [result for result in results if result["status"] == "failed"]
    if failed:  # the report lists them with their errors
        print(f"{len(failed)} of {len(results)} runs failed, e.g. {failed[0]['name']}: {failed[0]['error']}", file=sys.stderr)
        raise SystemExit(1)
    return results if written is None else written


if __name__ == "__main__":
    main()
