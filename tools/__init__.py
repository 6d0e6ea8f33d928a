"""The repository's tools. The train/test/demo/deploy/convert scripts are
run as files (``python tools/train.py``, and by ``mim`` from the installed
package); the analysis and data tools are modules of this package, run from
the repository root (``python -m tools.analysis_tools.benchmark``)."""
