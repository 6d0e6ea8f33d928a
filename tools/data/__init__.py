"""The synthetic data generator (``python -m tools.data.make_toy_data``)."""
