"""Replacing an attribute for a while and putting back exactly what was stored there.

``patch(owner, name, new)`` replaces ``owner.name`` now and returns a ``Patch`` whose
``restore()`` undoes it; ``patched(...)`` does the same for a ``with`` block. The restore
puts back the object the owner itself stored (a ``staticmethod`` stays one, a function's
``__defaults__`` the same tuple), or deletes the replacement when the value was inherited
or computed lazily, so nothing is left behind as an own attribute. The observers in
``pytest_resilience.observe`` and the fault injectors in ``faults`` patch with it; use it
for a fault or observer of your own.
"""

from __future__ import annotations

from pytest_resilience._patching import Patch, patch, patched

__all__ = ["Patch", "patch", "patched"]
