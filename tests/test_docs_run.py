"""Docs that run: every ``.. code-block:: python`` of README.rst and docs/*.rst, as written, in a
fresh interpreter per page (a page's blocks in order, sharing their names), in an empty folder
that sees the repository's ``examples/``. Budgets are cut by tests/docs_budget/sitecustomize.py
(its docstring says how), never by editing the text."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
BLOCK = re.compile(r"^( *)\.\. code-block:: python\n((?:\1 +:.*\n)*)\n((?:\1 +.*\n|[ \t]*\n)+)", re.MULTILINE)
#: What a page's examples need beyond the tests extra (skipped without it).
NEEDS = {"guide.rst": ["gymnasium_robotics"], "visual.rst": ["dm_control"], "dynamic.rst": ["dm_control"]}
#: Pages whose learn() calls get another cut: a default-size pixel SAC does one gradient step
#: (learning_starts 100) in place of 28 (about 2 minutes of CPU).
STEPS = {"visual.rst": 101}


def python_blocks(page: Path) -> list[str]:
    """The page's Python blocks, dedented, in order."""
    blocks = []
    for match in BLOCK.finditer(page.read_text()):
        lines = match.group(3).rstrip().splitlines()
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append("\n".join(line[indent:] for line in lines))
    return blocks


def test_the_pages_have_the_blocks_this_test_reads():
    counts = {page.name: len(python_blocks(page)) for page in PAGES}
    assert sum(counts.values()) >= 13 and counts["README.rst"] == 1, counts


@pytest.mark.parametrize("page", [page for page in PAGES if python_blocks(page)], ids=lambda page: page.name)
def test_every_python_block_of_the_page_runs(page, tmp_path):
    for module in NEEDS.get(page.name, []):
        pytest.importorskip(module)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    script = "\n\n".join(f"# block {index}\n{block}" for index, block in enumerate(python_blocks(page)))
    (tmp_path / "page.py").write_text(script)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "docs_budget"), str(ROOT)]),
        "OMP_NUM_THREADS": "1",
        **({"SB3_SPARSE_DOCS_STEPS": str(STEPS[page.name])} if page.name in STEPS else {}),
    }
    result = subprocess.run(
        [sys.executable, "page.py"], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{page.name}:\n{script}\n{result.stderr[-3000:]}"
