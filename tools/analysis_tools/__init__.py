"""Measuring tools: speed, FLOPs, ONNX checks, log plots, the model index
(``python -m tools.analysis_tools.NAME`` from the repository root)."""
