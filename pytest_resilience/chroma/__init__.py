"""Chroma reliability: transactions with rollback, validation, backups, integrity checks,
and the cross-process writer lock they share.

Reading a closed store without opening it in this process (what ``faults.chroma`` builds
on): ``probe_store`` opens a copy in a child process and describes it (``ProbeResult``),
``latest_seal`` reads the newest seal ``seal_store`` wrote, ``vector_segments`` maps the
vector segment directories to their collections, ``SQLITE_NAME`` is the database file.

Nothing here imports chromadb until it is used.
"""

from __future__ import annotations

from pytest_resilience.chroma._backup import (
    BackupInfo,
    BackupManager,
    BackupVerification,
    RestoreReport,
)
from pytest_resilience.chroma._files import SQLITE_NAME, close_store, vector_segments
from pytest_resilience.chroma._integrity import (
    Finding,
    IntegrityReport,
    averify_store,
    latest_seal,
    seal_store,
    verify_store,
)
from pytest_resilience.chroma._lock import StoreLock
from pytest_resilience.chroma._probe import ProbeResult, probe_store
from pytest_resilience.chroma._store import ChromaStore, make_store
from pytest_resilience.chroma._transaction import (
    ChromaTransaction,
    RecoveryReport,
    recover,
    transaction,
)
from pytest_resilience.chroma._validation import (
    RecordRules,
    ValidatingCollection,
    record_problems,
    validate_batch,
    validate_record,
)

__all__ = [
    "SQLITE_NAME",
    "BackupInfo",
    "BackupManager",
    "BackupVerification",
    "ChromaStore",
    "ChromaTransaction",
    "Finding",
    "IntegrityReport",
    "ProbeResult",
    "RecordRules",
    "RecoveryReport",
    "RestoreReport",
    "StoreLock",
    "ValidatingCollection",
    "averify_store",
    "close_store",
    "latest_seal",
    "make_store",
    "probe_store",
    "record_problems",
    "recover",
    "seal_store",
    "transaction",
    "validate_batch",
    "validate_record",
    "vector_segments",
    "verify_store",
]
