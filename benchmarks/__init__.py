"""pytest-benchmark suite for im2col (see conftest.py); not installed with the package."""
