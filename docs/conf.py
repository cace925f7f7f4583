"""Sphinx configuration of the sb3-sparse documentation (``make docs``)."""

import sb3_sparse

project = "sb3-sparse"
author = "sb3-sparse contributors"
copyright = "2026, sb3-sparse contributors"
release = sb3_sparse.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# SB3's docstrings use :param: fields; signatures of SB3 base classes are not ours to document.
autodoc_inherit_docstrings = False
# No intersphinx: CI has no network, and the build runs with warnings as errors.

html_theme = "sphinx_rtd_theme"
exclude_patterns = ["_build"]
