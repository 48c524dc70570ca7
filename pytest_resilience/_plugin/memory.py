"""Fixtures of the memory family: ``memory_pressure`` and ``fake_gpu`` (issue 4)."""
