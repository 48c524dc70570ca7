"""Every event kind, declared once: its name, who writes it, and the attributes it carries.

Emitters pass these constants to ``emit``; checkers, metrics, log formatters and reports
compare against them and read attributes through each kind's typed record
(``RETRY_ATTEMPT.attrs(event)["attempt"]``). In strict mode (``set_strict(True)``, on in
this project's own test suite) emitting an undeclared kind, or attributes a kind does not
declare, raises ``UndeclaredEvent``. ``declare`` adds a kind of your own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, NotRequired, TypedDict, TypeVar, cast

if TYPE_CHECKING:
    from pytest_resilience._events import Event

__all__ = [
    "FAULT_FAMILIES",
    "Kind",
    "UndeclaredEvent",
    "declare",
    "declared",
    "markdown_table",
]

R = TypeVar("R", bound=Mapping[str, Any])

#: The fault families a ``fault.*`` event's ``family`` attribute names.
FAULT_FAMILIES = (
    "failpoint", "network", "http", "clock", "memory", "cuda", "chroma", "subprocess", "disk",
)

_KINDS: dict[str, Kind[Any]] = {}
_BUILTIN: frozenset[str] = frozenset()  # filled at the end of this module


class UndeclaredEvent(ValueError):
    """An event whose kind, or one of whose attributes, is not declared (strict mode)."""


class Kind(str, Generic[R]):
    """An event kind: the dotted name (it *is* that string), the source convention, the
    attribute record (a ``TypedDict``), and a one-line meaning.

    ``open`` kinds (the ``fault.*`` and proxy kinds) accept attributes beyond the declared
    ones: each fault family adds its own details.
    """

    record: type[R]
    source: str
    doc: str
    required: frozenset[str]
    known: frozenset[str]
    open: bool

    def __new__(cls, name: str, record: type[R], *, source: str, doc: str,
                open: bool = False) -> Kind[R]:
        self = super().__new__(cls, name)
        self.record = record
        self.source = source
        self.doc = doc
        annotations = getattr(record, "__annotations__", {})
        self.known = frozenset(annotations)
        self.required = frozenset(k for k, v in annotations.items() if not _optional(v))
        self.open = open
        return self

    @property
    def family(self) -> str:
        """The part before the first dot: ``retry`` for ``retry.attempt``."""
        return self.split(".", 1)[0]

    def attrs(self, event: Event) -> R:
        """``event``'s attributes as this kind's typed record."""
        if event.kind != self:
            raise ValueError(f"event kind {event.kind!r} is not {str(self)!r}.")
        return cast(R, event.attrs)

    def check(self, attrs: Mapping[str, Any]) -> None:
        """Raise ``UndeclaredEvent`` unless ``attrs`` fit the declaration."""
        missing = sorted(self.required - attrs.keys())
        extra = [] if self.open else sorted(attrs.keys() - self.known)
        if missing or extra:
            raise UndeclaredEvent(
                f"event {str(self)!r}: missing attribute(s) {missing}, undeclared attribute(s) "
                f"{extra}. Declared: {sorted(self.known)} (pytest_resilience/_kinds.py)."
            )

    def __reduce__(self) -> tuple[Any, ...]:
        return (str, (str(self),))  # pickles (xdist, multiprocessing) as the plain name


def declare(name: str, record: type[R], *, source: str, doc: str,
            open: bool = False) -> Kind[R]:
    """Declare the event kind ``name`` (``<family>.<what>``) with its attribute record.

    Declaring a name twice with another record is refused.
    """
    if not isinstance(name, str) or "." not in name.strip(".") or name != name.strip():
        raise ValueError(f"name={name!r} is not a dotted event kind. Pass '<family>.<what>'.")
    existing = _KINDS.get(name)
    if existing is not None:
        if existing.record is not record:
            raise ValueError(f"event kind {name!r} is already declared with another record.")
        return cast(Kind[R], existing)
    kind = Kind(name, record, source=source, doc=doc, open=open)
    _KINDS[name] = kind
    return kind


def declared(name: str) -> Kind[Any] | None:
    """The declaration of ``name``, or ``None``."""
    return _KINDS.get(name)


def validate(kind: str, attrs: Mapping[str, Any]) -> None:
    """Raise ``UndeclaredEvent`` unless ``kind`` is declared and ``attrs`` fit it."""
    declaration = _KINDS.get(kind)
    if declaration is None:
        raise UndeclaredEvent(
            f"event kind {kind!r} is not declared. Declare it in pytest_resilience/_kinds.py "
            "(or with pytest_resilience.kinds.declare) and emit the constant."
        )
    declaration.check(attrs)


def markdown_table(*, builtin_only: bool = False) -> str:
    """The declared kinds as the Markdown table DESIGN.md and the docs show (only this
    project's own kinds with ``builtin_only``)."""
    rows = ["| kind | source | attributes | meaning |", "|---|---|---|---|"]
    for name in sorted(_BUILTIN if builtin_only else _KINDS):
        kind = _KINDS[name]
        attrs = ", ".join(
            f"`{a}`" if a in kind.required else f"`{a}`?" for a in _ordered(kind.record)
        ) + (", …" if kind.open else "")
        rows.append(f"| `{name}` | {kind.source} | {attrs or '—'} | {kind.doc} |")
    return "\n".join(rows) + "\n"


def _optional(annotation: Any) -> bool:
    """Whether an annotation is ``NotRequired[...]`` (read from its text: under
    ``from __future__ import annotations`` it is a string or a ``ForwardRef``)."""
    text = getattr(annotation, "__forward_arg__", annotation)
    return str(text).replace("typing.", "").startswith("NotRequired[")


def _ordered(record: type[Any]) -> list[str]:
    return list(getattr(record, "__annotations__", {}))


# -- records ---------------------------------------------------------------------------
# Attributes are plain builtins (they travel as JSON). ``NotRequired`` ones may be absent.
class RetryAttemptAttrs(TypedDict):
    """``retry.attempt``."""

    attempt: int
    outcome: str
    error: str | None
    elapsed: float


class RetrySleepAttrs(TypedDict):
    """``retry.sleep``."""

    attempt: int
    delay: float


class RetryGiveupAttrs(TypedDict):
    """``retry.giveup``."""

    attempts: int
    reason: str


BreakerTransitionAttrs = TypedDict("BreakerTransitionAttrs", {"from": str, "to": str})


class BreakerCallAttrs(TypedDict):
    """``breaker.call``: ``state`` is absent when a breaker is watched from outside
    (``watch_breaker``), which records when the call was admitted (``started``)."""

    state: NotRequired[str]
    outcome: str
    duration: float
    started: NotRequired[float]
    error: NotRequired[str | None]


class BreakerRejectedAttrs(TypedDict):
    """``breaker.rejected``: ``retry_after`` is absent when a breaker is watched from
    outside (``watch_breaker``), which records the exception it raised (``error``)."""

    retry_after: NotRequired[float]
    error: NotRequired[str | None]


class RateLimitDecisionAttrs(TypedDict):
    """``ratelimit.acquired`` / ``ratelimit.rejected``."""

    tokens: float
    waited: float


class LockTimeoutAttrs(TypedDict):
    """``lock.timeout``."""

    timeout: float | None
    what: str


class HealthCheckAttrs(TypedDict):
    """``health.check``."""

    status: str
    duration: float
    error: str | None


class DeadLetterAttrs(TypedDict):
    """``deadletter.*``."""

    job_id: str
    attempts: int | None
    error: str | None


class MemoryPressureAttrs(TypedDict):
    """``memory.pressure``."""

    level: str
    previous: str
    percent: float


class GpuUsageAttrs(TypedDict):
    """``gpu.usage``."""

    device: int
    used: int
    total: int
    level: str


class CacheEntryAttrs(TypedDict):
    """``cache.load`` / ``cache.hit`` / ``cache.miss``."""

    key: Any
    bytes: int


class CacheEvictAttrs(TypedDict):
    """``cache.evict``."""

    key: Any
    bytes: int
    cause: str


class ChromaCommitAttrs(TypedDict):
    """``chroma.commit``."""

    ops: int
    ids: int


class ChromaRollbackAttrs(TypedDict):
    """``chroma.rollback``."""

    ops: int
    ids: int
    outcome: str
    unrestored: int
    skipped: NotRequired[int]


class ChromaFilesAttrs(TypedDict):
    """``chroma.backup`` / ``chroma.restore`` / ``chroma.corrupt``."""

    path: Any
    mode: str
    outcome: str
    error: NotRequired[str | None]
    records: NotRequired[int | None]
    signed: NotRequired[bool]
    encrypted: NotRequired[bool]


class FaultAttrs(TypedDict):
    """``fault.armed`` / ``fault.fired`` / ``fault.disarmed`` (open: families add details)."""

    family: str
    fault: NotRequired[str]
    action: NotRequired[str]
    trigger: NotRequired[str]
    call: NotRequired[int]


class ProxyConnectionAttrs(TypedDict):
    """``proxy.connection`` (open)."""

    event: str


class ProxyToxicAttrs(TypedDict):
    """``proxy.toxic`` (open)."""

    event: str


class ClockSkewAttrs(TypedDict):
    """``clock.skew``."""

    fault: str
    seconds: NotRequired[float | None]
    to: NotRequired[float | None]
    rate: NotRequired[float | None]
    target: str
    on: str
    rebound: NotRequired[int]


class TraceOperationAttrs(TypedDict):
    """``trace.operation``."""

    duration: float
    outcome: str
    error: str | None
    peak_rss_delta: int | None
    correlation_id: str | None


class SlaSampleAttrs(TypedDict):
    """``sla.sample``."""

    seconds: float
    ok: bool
    faults: NotRequired[bool]


class SlaBudgetAttrs(TypedDict):
    """``sla.budget``: one budget's verdict when the test's SLA is checked."""

    budget: str
    metric: str
    operation: str | None
    threshold: float
    observed: float | None
    passed: bool | None
    reason: str
    windows: NotRequired[list[dict[str, Any]]]


class CheckVerdictAttrs(TypedDict):
    """``check.verdict``: a checker's verdict on a history."""

    checker: str
    passed: bool
    explanation: str


class ChaosRunAttrs(TypedDict):
    """``chaos.run``: what a chaos run did."""

    plans: int
    failures: int
    fired: dict[str, int]
    plan: NotRequired[dict[str, Any] | None]
    replay: NotRequired[str | None]
    error: NotRequired[str | None]
    properties: NotRequired[dict[str, dict[str, Any]]]
    coverage: NotRequired[dict[str, Any]]
    search: NotRequired[dict[str, Any] | None]


class GpuSimulatedAttrs(TypedDict):
    """``cuda.simulated``: a simulated GPU installed or removed."""

    event: str
    devices: int
    total: NotRequired[int]


class MigrationStepAttrs(TypedDict):
    """``migration.applied`` / ``migration.rolled_back``."""

    version: str
    name: str
    checksum: str
    statements: int
    transactional: bool
    duration: float


class MigrationFailedAttrs(TypedDict):
    """``migration.failed``."""

    version: str
    name: str
    direction: str
    statement: int
    error: str
    rolled_back: bool


class MigrationDriftAttrs(TypedDict):
    """``migration.drift``."""

    version: str
    file: str
    applied_checksum: str
    current_checksum: str | None


class MigrationCrashPointAttrs(TypedDict):
    """``migration.crash_point``."""

    version: str
    migration: str
    point: int
    point_kind: str
    statement: str
    mode: str
    outcome: str
    problems: list[str]


class MigrationRoundTripAttrs(TypedDict):
    """``migration.round_trip``."""

    version: str
    migration: str
    outcome: str
    problems: list[str]


class DiskCrashStateAttrs(TypedDict):
    """``disk.crash_state``."""

    point: int
    before: str
    variant: str
    files: int
    acked: int
    outcome: str
    error: str | None


class DiskExploredAttrs(TypedDict):
    """``disk.explored``."""

    points: int
    states: int
    failures: int


class StorageUnavailableAttrs(TypedDict):
    """``storage.unavailable``."""

    storage: str
    operation: str
    policy: str
    error: str


class QueueJobAttrs(TypedDict):
    """``queue.*``: one job's step through a ``JobQueue``."""

    job_id: str
    priority: NotRequired[str]
    user: NotRequired[str | None]
    attempts: NotRequired[int]
    error: NotRequired[str]
    reason: NotRequired[str]
    for_job: NotRequired[str]


class SleepCalledAttrs(TypedDict):
    """``sleep.called``: a sleep observed by ``watch_sleeps``."""

    seconds: float
    via: str
    caller: str
    call: int | None


class CallStartAttrs(TypedDict):
    """``call.start``: a watched function or method was called."""

    function: str
    args: str
    call: int
    parent: int | None
    correlation_id: NotRequired[str | None]


class CallEndAttrs(TypedDict):
    """``call.end``: a watched call returned or raised."""

    function: str
    call: int
    outcome: str
    result: str | None
    error: str | None
    duration: float
    value: NotRequired[str | None]


class DeadLetterQuarantinedAttrs(TypedDict):
    """``deadletter.quarantined``."""

    job_id: str | None
    reason: str


class DeadLetterTornAttrs(TypedDict):
    """``deadletter.torn``."""

    path: str
    frames: int
    bytes: int
    reason: str


def _k(name: str, record: type[R], source: str, doc: str, *, open: bool = False) -> Kind[R]:
    return declare(name, record, source=source, doc=doc, open=open)


RETRY_ATTEMPT = _k("retry.attempt", RetryAttemptAttrs, "retry name",
                   "one call of the wrapped function; `outcome` ok/error")
RETRY_SLEEP = _k("retry.sleep", RetrySleepAttrs, "retry name", "the wait before the next attempt")
RETRY_GIVEUP = _k("retry.giveup", RetryGiveupAttrs, "retry name",
                  "the retry stopped: `reason` attempts/deadline/not_retryable/budget")
BREAKER_TRANSITION = _k("breaker.transition", BreakerTransitionAttrs, "breaker name",
                        "state change: closed/open/half_open")
BREAKER_CALL = _k("breaker.call", BreakerCallAttrs, "breaker name",
                  "an admitted call; `outcome` ok/error/slow")
BREAKER_REJECTED = _k("breaker.rejected", BreakerRejectedAttrs, "breaker name",
                      "a call refused while open")
RATELIMIT_ACQUIRED = _k("ratelimit.acquired", RateLimitDecisionAttrs, "limiter name",
                        "tokens granted")
RATELIMIT_REJECTED = _k("ratelimit.rejected", RateLimitDecisionAttrs, "limiter name",
                        "tokens refused")
LOCK_TIMEOUT = _k("lock.timeout", LockTimeoutAttrs, "resource name",
                  "a lock, semaphore or pool wait timed out")
HEALTH_CHECK = _k("health.check", HealthCheckAttrs, "check name", "one health check ran")
DEADLETTER_ADDED = _k("deadletter.added", DeadLetterAttrs, "queue name", "a failed job was stored")
DEADLETTER_REPLAYED = _k("deadletter.replayed", DeadLetterAttrs, "queue name",
                         "a stored job was replayed")
DEADLETTER_PURGED = _k("deadletter.purged", DeadLetterAttrs, "queue name",
                       "a stored job was removed")
MEMORY_PRESSURE = _k("memory.pressure", MemoryPressureAttrs, "monitor name",
                     "host memory pressure level changed")
GPU_USAGE = _k("gpu.usage", GpuUsageAttrs, "monitor name", "a device's pressure level changed")
CACHE_LOAD = _k("cache.load", CacheEntryAttrs, "cache name", "a value was loaded")
CACHE_HIT = _k("cache.hit", CacheEntryAttrs, "cache name", "a lookup found the key")
CACHE_MISS = _k("cache.miss", CacheEntryAttrs, "cache name", "a lookup missed")
CACHE_EVICT = _k("cache.evict", CacheEvictAttrs, "cache name",
                 "an entry left: `cause` lru/ttl/pressure/gpu/manual")
CHROMA_COMMIT = _k("chroma.commit", ChromaCommitAttrs, "collection name",
                   "a transaction committed")
CHROMA_ROLLBACK = _k("chroma.rollback", ChromaRollbackAttrs, "collection name",
                     "a transaction was rolled back")
CHROMA_BACKUP = _k("chroma.backup", ChromaFilesAttrs, "store label", "a backup was written")
CHROMA_RESTORE = _k("chroma.restore", ChromaFilesAttrs, "store label", "a backup was restored")
CHROMA_CORRUPT = _k("chroma.corrupt", ChromaFilesAttrs, "store label",
                    "store files were damaged on purpose")
FAULT_ARMED = _k("fault.armed", FaultAttrs, "injector name",
                 "a fault became active (`family` says which)", open=True)
FAULT_FIRED = _k("fault.fired", FaultAttrs, "injector name or failpoint:<name>",
                 "an active fault acted", open=True)
FAULT_DISARMED = _k("fault.disarmed", FaultAttrs, "injector name",
                    "a fault was undone", open=True)
PROXY_CONNECTION = _k("proxy.connection", ProxyConnectionAttrs, "proxy name",
                      "`event` listen/open/close/stop of a proxied connection", open=True)
PROXY_TOXIC = _k("proxy.toxic", ProxyToxicAttrs, "proxy name",
                 "`event` added/decided/removed/down/up of a toxic", open=True)
CLOCK_SKEW = _k("clock.skew", ClockSkewAttrs, "clock", "a clock was moved")
TRACE_OPERATION = _k("trace.operation", TraceOperationAttrs, "operation name",
                     "one traced operation ended")
SLA_SAMPLE = _k("sla.sample", SlaSampleAttrs, "operation name",
                "one timed sample; `faults` whether a fault was active")
SLA_BUDGET = _k("sla.budget", SlaBudgetAttrs, "test", "one SLA budget's verdict")
CHECK_VERDICT = _k("check.verdict", CheckVerdictAttrs, "checker name",
                   "a checker judged the history")
CHAOS_RUN = _k("chaos.run", ChaosRunAttrs, "test", "a chaos run ended")
CUDA_SIMULATED = _k("cuda.simulated", GpuSimulatedAttrs, "fake_gpu",
                    "a simulated GPU was installed or removed")
MIGRATION_APPLIED = _k("migration.applied", MigrationStepAttrs, "migrator name",
                       "a migration's up ran and committed")
MIGRATION_ROLLED_BACK = _k("migration.rolled_back", MigrationStepAttrs, "migrator name",
                           "a migration's down ran and committed")
MIGRATION_FAILED = _k("migration.failed", MigrationFailedAttrs, "migrator name",
                      "a migration failed at `statement` (0: its history row)")
MIGRATION_DRIFT = _k("migration.drift", MigrationDriftAttrs, "migrator name",
                     "an applied migration's file changed")
MIGRATION_CRASH_POINT = _k("migration.crash_point", MigrationCrashPointAttrs,
                           "explorer name", "one crash point explored; `outcome` old/new/broken")
MIGRATION_ROUND_TRIP = _k("migration.round_trip", MigrationRoundTripAttrs, "explorer name",
                          "up, down, up of one migration compared")
DISK_CRASH_STATE = _k("disk.crash_state", DiskCrashStateAttrs, "disk:<root name>",
                      "one crash state's recovery was checked; `outcome` ok/failed")
DISK_EXPLORED = _k("disk.explored", DiskExploredAttrs, "disk:<root name>",
                   "a crash-point exploration ended")
STORAGE_UNAVAILABLE = _k("storage.unavailable", StorageUnavailableAttrs, "component name",
                         "shared storage failed; `policy` fail_open/fail_closed/refuse/dropped")
QUEUE_ENQUEUED = _k("queue.enqueued", QueueJobAttrs, "queue name", "a job was queued")
QUEUE_REJECTED = _k("queue.rejected", QueueJobAttrs, "queue name",
                    "a job was refused: `reason` full/rate_limited")
QUEUE_SHED = _k("queue.shed", QueueJobAttrs, "queue name",
                "a lower-priority job was shed to the dead-letter queue `for_job`")
QUEUE_DEQUEUED = _k("queue.dequeued", QueueJobAttrs, "queue name", "a worker took a job")
QUEUE_ACKED = _k("queue.acked", QueueJobAttrs, "queue name", "a job was done")
QUEUE_FAILED = _k("queue.failed", QueueJobAttrs, "queue name", "a job's attempt failed")
QUEUE_REDELIVERED = _k("queue.redelivered", QueueJobAttrs, "queue name",
                       "a job came back: `reason` expired/failed")
QUEUE_DEAD = _k("queue.dead", QueueJobAttrs, "queue name",
                "a job went to the dead-letter queue after its last attempt")
SLEEP_CALLED = _k("sleep.called", SleepCalledAttrs, "watch_sleeps name",
                  "a sleep (`via` time.sleep/asyncio.sleep/clock.sleep/clock.asleep) ran on "
                  "the test's clock; `call` is the watched call it ran inside")
CALL_START = _k("call.start", CallStartAttrs, "watched layer (name= or the function)",
                "a watched call began; `parent` is the watched call it ran inside")
CALL_END = _k("call.end", CallEndAttrs, "watched layer (name= or the function)",
              "a watched call ended: `outcome` ok/error, `result`/`error` type names")
DEADLETTER_QUARANTINED = _k("deadletter.quarantined", DeadLetterQuarantinedAttrs, "queue name",
                            "a row that could not be read was moved to quarantine")
DEADLETTER_TORN = _k("deadletter.torn", DeadLetterTornAttrs, "queue name",
                     "an unfinished write at the end of the SQLite log, found at open")

_BUILTIN = frozenset(_KINDS)
