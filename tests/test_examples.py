"""Every example runs in its smoke mode and writes what its docstring promises."""

import csv
import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def is_png(path):
    data = Path(path).read_bytes()
    return data.startswith(b"\x89PNG") and len(data) > 5_000


def test_every_example_has_a_docstring_with_its_duration_and_a_smoke_mode():
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        text = script.read_text()
        assert text.startswith('"""') and "--smoke" in text and ("minute" in text or "second" in text), script.name


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
