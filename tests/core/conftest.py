"""Fixtures of the core's tests (``fake_cuda``: tests/conftest.py)."""
