"""Fixtures of the Chroma family: ``chroma_store`` (issue 5)."""
