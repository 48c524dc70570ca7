"""Fixtures and hooks of the SLA family: the ``sla`` fixture and marker (issue 7)."""
