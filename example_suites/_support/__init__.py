"""Helpers shared by the example services (importable because ``example_suites/`` is on
``sys.path``: pytest puts the root ``conftest.py``'s directory there)."""
