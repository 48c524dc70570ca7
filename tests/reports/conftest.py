"""Import numpy up front: in-process pytester runs must not re-import it.

``pytester`` restores ``sys.modules`` after each inner run; numpy's C extension cannot
be loaded twice in one process, and the histogram imports numpy lazily on first flush.
"""

from __future__ import annotations

import pytest

pytest.importorskip("numpy", reason="the SLA histogram folds samples with numpy")
