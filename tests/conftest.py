import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

from sb3_sparse.threads import CONCURRENT_RUNS_VARIABLE

# Tiny networks: the tests exercise real SB3 training loops, so they must stay cheap on 2 CPU cores.
TINY_SIMBA = dict(actor_hidden_dim=16, actor_num_blocks=1, critic_hidden_dim=32, critic_num_blocks=1)


def load_script(path: Path) -> ModuleType:
    """A script of the repository (an example, a benchmark) as a module, without running its ``main``."""
    spec = importlib.util.spec_from_file_location(f"script_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:
    # One intra-op thread: tiny matrices gain nothing from more, and CI's 2 cores stay predictable.
    torch.set_num_threads(1)
    # Each xdist worker is one of several runs sharing the cores: the runner's default thread count
    # (sb3_sparse.threads) counts them, and the subprocesses the package does not size (rl_zoo3's,
    # Ray's) take one thread: more threads than free cores made steps 2x to 12x slower (sb3_sparse.threads).
    os.environ.setdefault(CONCURRENT_RUNS_VARIABLE, os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def sb3_log_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    # SB3 makes an empty /tmp/SB3-<date> folder at every learn() without a logger (hundreds per suite):
    # SB3_LOGDIR puts them in pytest's own temporary folder, which pytest prunes.
    os.environ.setdefault("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3_logs")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The long tests (marked slow) first: handed out one at a time (make test's --maxschedchunk 1;
    # xdist's default sends each worker a quarter of its share at once, all of them to the first),
    # they spread over the workers, and the short ones fill in instead of one long test ending alone.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Exit code 5 ("no tests ran") must never pass for success: fail loudly instead.
    if not session.items and not session.config.option.collectonly:
        raise pytest.UsageError("no tests were collected: check the test paths and the -k/-m filters")
