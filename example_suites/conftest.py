"""Example suites run with ``pytest -p resilience example_suites``; see README.

Loading this root conftest (default ``prepend`` import mode) puts ``example_suites/`` on
``sys.path``, so every suite imports the shared helpers as ``_support``.
"""
