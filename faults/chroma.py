"""Chroma faults: corrupt a store's files, fail a write part-way, SIGKILL a writer.

``corrupt(store, mode, seed)`` damages one file kind of a *closed* store (and only files
under the path handed over); it is a context manager that puts every byte back on
exit. ``Corruption.outcome()`` opens the damaged store in a child process and says what
chromadb does with it on its own: ``ok``, ``clean_error``, ``panic`` (a
``PanicException``, which escapes ``except Exception``), ``crash`` (a signal such as
SIGSEGV), ``silent_divergence`` (answers differ from those sealed before the damage) or
``hang`` (bounded by ``timeout``).
"""

from __future__ import annotations

from faults._chroma import (
    CRASH_PRONE,
    MODES,
    OUTCOMES,
    Corruption,
    KillReport,
    Outcome,
    classify,
    corrupt,
    fail_during,
    judge,
    kill_during,
    probe,
)

__all__ = [
    "CRASH_PRONE",
    "MODES",
    "OUTCOMES",
    "Corruption",
    "KillReport",
    "Outcome",
    "classify",
    "corrupt",
    "fail_during",
    "judge",
    "kill_during",
    "probe",
]
