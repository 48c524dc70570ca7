"""Example suites run with ``pytest -p resilience example_suites``; see README."""
