import pytest
import torch

# Tiny networks: the tests exercise real SB3 training loops, so they must stay cheap on 2 CPU cores.
TINY_SIMBA = dict(actor_hidden_dim=16, actor_num_blocks=1, critic_hidden_dim=32, critic_num_blocks=1)


def pytest_configure(config: pytest.Config) -> None:
    # One intra-op thread: tiny matrices gain nothing from more, and CI's 2 cores stay predictable.
    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The long tests (marked slow) first: with one xdist worker per core, the short ones then fill in
    # around them instead of one long test running alone at the end.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Exit code 5 ("no tests ran") must never pass for success: fail loudly instead.
    if not session.items and not session.config.option.collectonly:
        raise pytest.UsageError("no tests were collected: check the test paths and the -k/-m filters")
