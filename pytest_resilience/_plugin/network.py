"""Fixtures of the network family: ``fault_proxy`` (issue 6)."""
