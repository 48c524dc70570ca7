"""The ``chaos`` marker's runner: property-based fault runs (issue 8)."""
