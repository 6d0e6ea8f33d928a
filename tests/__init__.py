"""The test suite, a package: test modules import the shared helpers
(tests/helpers.py, tests/detection_data.py) and the official reference code
(tests/official) by their package names."""
