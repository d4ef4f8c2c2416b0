"""Sphinx configuration of the sktransfer documentation site.

Build from the repository root (see docs/BUILD.md):
``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the checkout's sktransfer, whatever is installed
sys.path.insert(0, str(DOCS))  # _gallery_order

# The gallery's examples read their data from $SKTRANSFER_DATA, else ../shared/data beside
# the repository root; resolve it here once so that every example sees the same folder.
os.environ.setdefault("SKTRANSFER_DATA", str(ROOT.parent / "shared" / "data"))
os.environ.setdefault("MPLBACKEND", "Agg")

import sktransfer

project = "sktransfer"
author = "the sktransfer developers"
copyright = "the sktransfer developers"
release = sktransfer.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "examples", "_gallery_order.py", "Thumbs.db", ".DS_Store", "BUILD.md", "screenshots", "make_report_screenshot.py"]
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_extra_path = []

# --- autodoc, autosummary, numpydoc
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False  # the class template lists the methods itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# --- the example gallery: executed on every build, on the CPU
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Stop at the first failing example; SKTRANSFER_DOCS_ALL_EXAMPLES=1 runs them all and reports every failure.
    "abort_on_example_error": os.environ.get("SKTRANSFER_DOCS_ALL_EXAMPLES") != "1",
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "min_reported_time": 0,
    "show_memory": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "capture_repr": (),
    "download_all_examples": False,
    "doc_module": ("sktransfer",),
    "backreferences_dir": "generated",
    "reference_url": {"sktransfer": None},
}

# --- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"sktransfer {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # API pages (one object each) and gallery pages (code and output) get the width of the right-hand sidebar.
    "secondary_sidebar_items": {
        "index": ["page-toc", "sourcelink"], "api": ["page-toc", "sourcelink"], "guide/*": ["page-toc", "sourcelink"],
        "modules/*": ["page-toc", "sourcelink"], "generated/*": [], "auto_examples/*": [],
    },
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = True
