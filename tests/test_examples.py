"""Every example runs in its smoke mode and writes what its docstring promises."""

import csv
import json
import math
import textwrap
from pathlib import Path

import pytest

from tests.conftest import load_script

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    return load_script(EXAMPLES / f"{name}.py")


def is_png(path):
    data = Path(path).read_bytes()
    return data.startswith(b"\x89PNG") and len(data) > 5_000


def test_every_example_has_a_docstring_with_its_duration_and_a_smoke_mode():
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        text = script.read_text()
        assert text.startswith('"""') and "--smoke" in text and ("minute" in text or "second" in text), script.name


def test_readme_quick_start_code_runs_with_the_example_sizes(tmp_path, monkeypatch):
    """The README's code as written (only its budget cut), and the sizes examples/quickstart.py times."""
    readme = (EXAMPLES.parent / "README.rst").read_text()
    block = readme.split(".. quickstart-start")[1].split(".. code-block:: python")[1].split("\nThis takes")[0]
    code = textwrap.dedent(block)
    assert "model.learn(4_000)" in code
    for size in ("actor_hidden_dim=32", "critic_hidden_dim=128", "critic_num_blocks=1", "n_critics=1"):
        assert size in code and size in (EXAMPLES / "quickstart.py").read_text(), size
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code.replace("model.learn(4_000)", "model.learn(150)"), "README.rst", "exec"), namespace)
    assert namespace["model"].num_timesteps == 150 and (tmp_path / "sac_sparse.zip").is_file()


def test_quickstart(tmp_path):
    path = load_example("quickstart").main(["--smoke", "--output-dir", str(tmp_path)])
    assert path.is_file() and path.suffix == ".zip"


def test_paper_setup_dmc(tmp_path):
    run_dir = load_example("paper_setup_dmc").main(["--smoke", "--output-dir", str(tmp_path)])
    assert (run_dir / "model.zip").is_file() and is_png(run_dir / "evaluations.png")
    # A 200-step run evaluates every tenth of the run (40 environment steps), then once more at the end.
    assert (run_dir / "evaluations.csv").read_text().count("\n") == 1 + 10 + 1
    assert list((tmp_path / "zoo").glob("sac/sb3_sparse-dmc-humanoid-run-v0_1/*.zip"))


def test_dense_vs_sparse(tmp_path):
    figure = load_example("dense_vs_sparse").main(["--smoke", "--output-dir", str(tmp_path)])
    assert is_png(figure) and is_png(tmp_path / "interference.png")
    assert (tmp_path / "dense" / "progress.csv").is_file() and (tmp_path / "sparse" / "progress.csv").is_file()


def test_parameter_equivalent(tmp_path):
    figure = load_example("parameter_equivalent").main(["--smoke", "--output-dir", str(tmp_path)])
    assert is_png(figure)
    with (tmp_path / "results.csv").open() as file:
        dense, sparse = csv.DictReader(file)
    assert int(sparse["total"]) > 2 * int(dense["total"])  # the sparse network is much larger in total...
    assert int(sparse["nonzero"]) == pytest.approx(int(dense["nonzero"]), rel=0.05)  # ...with as many nonzero weights


def test_sparsity_outside_sb3():
    losses = load_example("sparsity_outside_sb3").main(["--smoke"])
    assert set(losses) == {"sgd", "adamw"} and all(math.isfinite(loss) for loss in losses.values())


def test_stream_ac_sparsity(tmp_path):
    path = load_example("stream_ac_sparsity").main(["--smoke", "--workers", "1", "--output-dir", str(tmp_path)])
    assert is_png(path)
    with open(tmp_path / "returns.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert {(row["variant"], row["width"]) for row in rows} == {
        (variant, width) for variant in ("dense", "SparseInit 0.9", "ER 0.9") for width in ("16", "32")
    }


def test_dqn_gmp(tmp_path, capsys):
    pytest.importorskip("ale_py", reason="the atari extra (ale-py) is not installed")
    run_dir = load_example("dqn_gmp").main(["--smoke", "--output-dir", str(tmp_path)])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    densities = [float(row[1]) for row in rows]
    # a row per diagnostics measurement and per SB3 log (the densities are in every log row)
    assert len(rows) >= 10 and densities[0] == 1.0 and densities == sorted(densities, reverse=True)
    assert 0.03 < densities[-1] < 0.07  # Erdős–Rényi densities at sparsity 0.95, reached at 80% of the run
    identity = json.loads((run_dir / "config.json").read_text())["identity"]
    assert identity["topology"] == "gmp" and identity["critic_sparsity"] == 0.95 and (run_dir / "result.json").is_file()
