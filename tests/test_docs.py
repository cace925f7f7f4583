"""The Sphinx documentation builds without warnings and documents every public name."""

import re
import subprocess
import sys
from pathlib import Path

import sb3_sparse

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build_without_warnings_and_cover_the_public_api(tmp_path):
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    documented = set(re.findall(r'id="(sb3_sparse\.[^"]+)"', (tmp_path / "api.html").read_text()))
    public = [name for name in sb3_sparse.__all__ if name != "__version__"]
    missing = [name for name in public if not any(anchor.endswith(f".{name}") for anchor in documented)]
    assert not missing, f"public names missing from the API reference: {missing}"
    for page in ("install", "quickstart", "guide", "diagnostics", "reproducing", "method", "changelog"):
        assert (tmp_path / f"{page}.html").is_file(), page
