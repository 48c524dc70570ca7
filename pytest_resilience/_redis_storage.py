"""``RedisStorage``: component state in Redis, shared by every process that names it.

Every state change is one Lua script (``_redis_lua``): atomic on the server and one
round trip. A failed round trip (connection refused or reset, timeout) follows the
storage's ``FailurePolicy``; the client is built without automatic retries, because
repeating a script whose reply was lost could apply it twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pytest_resilience import _redis_lua as lua
from pytest_resilience import _validate
from pytest_resilience._events import emit
from pytest_resilience._storage import (
    Admission,
    FailurePolicy,
    JobRecord,
    Phase,
    StorageUnavailable,
)
from pytest_resilience.kinds import STORAGE_UNAVAILABLE

if TYPE_CHECKING:
    import redis

    from pytest_resilience._breaker import BreakerState, CircuitBreaker
    from pytest_resilience._clock import Clock
    from pytest_resilience._deadletter import DeadLetterQueue
    from pytest_resilience._jobqueue import JobQueue
    from pytest_resilience._ratelimit import TokenBucket
    from pytest_resilience._retry_budget import RetryBudget

__all__ = ["RedisStorage"]

T = TypeVar("T")
Transitions = list[tuple["BreakerState", "BreakerState"]]

_REFUSE: Any = object()  # fallback of operations that never fail open
_TIME_SOURCES = ("server", "clock")
_URL = "'redis://host:port/db' (or rediss://, unix://)"


def _client(url: str, timeout: float) -> redis.Redis:
    """A client of ``url`` that does not connect yet; a malformed URL names ``url``."""
    import redis as redis_module
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        return redis_module.Redis.from_url(url, socket_timeout=timeout,
                                           socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"url={_validate.show(url)} is not a Redis URL ({exc}). Pass "
                         f"{_URL}.") from None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RedisStorage:
    """Keeps component state in Redis under ``prefix``, so processes and hosts share it.

    ``url`` is a ``redis://`` URL or a ``redis.Redis`` client (build it with
    ``retry=None``-like settings: a lost reply must not be replayed). ``policy`` says
    what a component does when Redis cannot be reached (see ``FailurePolicy``).
    ``time="server"`` reads Redis' ``TIME`` inside each script, so hosts whose clocks
    disagree still agree on the state; ``time="clock"`` uses each component's clock
    (virtual time in tests, or processes on one host). Keys of buckets, breakers and
    budgets expire after ``idle_ttl`` seconds unused (or once their state would be
    the same as a fresh one, if later); queues and dead letters never expire.
    """

    def __init__(
        self,
        url: str | redis.Redis = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "resilience:",
        policy: FailurePolicy | str = FailurePolicy.FAIL_CLOSED,
        time: Literal["server", "clock"] = "server",
        idle_ttl: float = 600.0,
        timeout: float = 1.0,
        name: str | None = None,
    ) -> None:
        import redis as redis_module

        policies = "FailurePolicy.FAIL_OPEN, FailurePolicy.FAIL_CLOSED, 'fail_open' or " \
            "'fail_closed'"
        _validate.check(isinstance(policy, str | FailurePolicy), "policy", policy,
                        what="a failure policy", accepted=policies, kind=TypeError)
        _validate.check(isinstance(policy, FailurePolicy) or policy in {
            p.value for p in FailurePolicy}, "policy", policy, what="a failure policy",
            accepted=policies)
        self.policy = FailurePolicy(policy)
        _validate.check(isinstance(time, str) and time in _TIME_SOURCES, "time", time,
                        what="a time source", accepted="'server' (Redis TIME) or 'clock' "
                        "(each component's clock)")
        _validate.text(prefix, "prefix", empty=True, what="a string",
                       accepted="a key prefix such as 'myservice:'")
        timeout = _validate.seconds(timeout, "timeout", positive=True, what="valid",
                                    accepted="seconds > 0")
        idle_ttl = _validate.seconds(idle_ttl, "idle_ttl", positive=True, what="valid",
                                     accepted="seconds > 0")
        if name is not None:
            _validate.text(name, "name")
        if isinstance(url, str):
            self.client: redis.Redis = _client(url, timeout)
        elif isinstance(url, redis_module.Redis):
            self.client = url
        else:
            raise TypeError(f"url={_validate.show(url)} is not a Redis URL or client. Pass "
                            f"{_URL} or a redis.Redis instance.")
        kwargs = self.client.connection_pool.connection_kwargs
        self.url = (f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/"
                    f"{kwargs.get('db', 0)}")
        self.name = name if name is not None else self.url
        self.prefix = prefix
        self.time = time
        self.idle_ttl = float(idle_ttl)
        self._errors: tuple[type[BaseException], ...] = (
            redis_module.exceptions.ConnectionError, redis_module.exceptions.TimeoutError,
        )
        self._scripts: dict[str, Any] = {}

    # -- plumbing ----------------------------------------------------------------------
    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return script

    def run(
        self,
        operation: str,
        owner: str,
        clock: Clock,
        call: Callable[[], T],
        fallback: T,
        *,
        drop: bool = False,
    ) -> T:
        """``call()``; when Redis cannot be reached, apply the policy: emit
        ``storage.unavailable``, then return ``fallback`` (fail open) or raise
        ``StorageUnavailable``. ``drop=True`` (recording what already happened) always
        returns ``fallback``: the caller's own result must not be replaced."""
        try:
            return call()
        except self._errors as exc:
            refuse = not drop and (fallback is _REFUSE
                                   or self.policy is FailurePolicy.FAIL_CLOSED)
            policy = ("dropped" if drop else "refuse" if fallback is _REFUSE
                      else self.policy.value)
            emit(STORAGE_UNAVAILABLE, owner, clock, storage=self.name, operation=operation,
                 policy=policy, error=f"{type(exc).__name__}: {exc}")
            if not refuse:
                return fallback
            raise StorageUnavailable(self._message(operation, owner, exc, fallback),
                                     storage=self.name, operation=operation,
                                     context={"error": repr(exc), "policy": policy}) from exc

    def _message(self, operation: str, owner: str, exc: BaseException, fallback: Any) -> str:
        cause = f"{type(exc).__name__}: {exc}"
        if fallback is _REFUSE:
            return (f"{self.name} is unavailable ({cause}): {operation} on {owner!r} may not "
                    "have been applied. Repeating it is safe (the job id makes it "
                    "idempotent) once Redis answers again.")
        return (f"{self.name} is unavailable ({cause}): {operation} on {owner!r} was "
                "refused (policy fail_closed). Check that Redis is reachable, or pass "
                "policy=FailurePolicy.FAIL_OPEN to allow instead.")

    def _eval(self, source: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        return self._script(source)(keys=list(keys), args=list(args))

    def _now(self, clock: Clock, *, wall: bool = False) -> str:
        if self.time == "server":
            return ""
        return repr(clock.time() if wall else clock.monotonic())

    def _ttl_ms(self, horizon: float = 0.0) -> int:
        return math.ceil(max(self.idle_ttl, horizon) * 1000)

    def key(self, kind: str, name: str) -> str:
        """The key (or key prefix) of component ``name`` of ``kind``. A ``{...}`` hash
        tag keeps one component's keys in one Redis Cluster slot."""
        return f"{self.prefix}{kind}:{{{name}}}"

    # -- stores ------------------------------------------------------------------------
    def bucket_store(self, bucket: TokenBucket) -> _RedisBucket:
        """The shared tokens of buckets named ``bucket.name``."""
        return _RedisBucket(self, bucket)

    def breaker_store(self, breaker: CircuitBreaker) -> _RedisBreaker:
        """The shared state of breakers named ``breaker.name``."""
        return _RedisBreaker(self, breaker)

    def budget_store(self, budget: RetryBudget) -> _RedisBudget:
        """The shared counts of budgets named ``budget.name``."""
        return _RedisBudget(self, budget)

    def dead_letter_store(self, queue: DeadLetterQueue) -> _RedisDeadLetters:
        """The shared jobs of dead-letter queues named ``queue.name``."""
        return _RedisDeadLetters(self, queue)

    def queue_store(self, queue: JobQueue) -> _RedisQueue:
        """The shared jobs of job queues named ``queue.name``."""
        return _RedisQueue(self, queue)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def __repr__(self) -> str:
        return (f"RedisStorage({self.name!r}, prefix={self.prefix!r}, "
                f"policy={self.policy.value!r}, time={self.time!r})")


class _RedisBucket:
    def __init__(self, storage: RedisStorage, bucket: TokenBucket) -> None:
        self._s = storage
        self._b = bucket
        self._keys = [storage.key("bucket", bucket.name)]
        self._script = storage._script(lua.BUCKET)
        ttl = storage._ttl_ms(bucket.capacity / bucket.rate)
        self._settings = (repr(bucket.rate), repr(bucket.capacity), repr(bucket._initial))
        self._ttl = ttl

    def _call(self, n: float, operation: str, fallback: list[Any]) -> list[Any]:
        b = self._b
        args = [self._s._now(b.clock), *self._settings, repr(n), self._ttl]
        script, keys = self._script, self._keys
        return self._s.run(operation, b.name, b.clock, lambda: script(keys, args), fallback)

    def take(self, n: float) -> bool:
        return bool(self._call(n, "bucket.take", [1, "0", "0"])[0])

    def reserve(self, n: float) -> float:
        granted, wait, _ = self._call(n, "bucket.take", [1, "0", "0"])
        return 0.0 if granted else float(wait)

    def peek(self) -> float:
        return float(self._call(0, "bucket.peek", [0, "0", repr(self._b.capacity)])[2])


class _RedisBreaker:
    def __init__(self, storage: RedisStorage, breaker: CircuitBreaker) -> None:
        from pytest_resilience._breaker import BreakerState

        self._s = storage
        self._b = breaker
        self._state = BreakerState
        base = storage.key("breaker", breaker.name)
        self._keys = (base, base + ":window")
        horizon = breaker.recovery_timeout * 2
        if breaker.window_kind == "time":
            horizon = max(horizon, float(breaker._window.size))
        self._ttl = storage._ttl_ms(horizon)
        b = breaker
        windowed = b.failure_rate is not None or b.slow_call_rate is not None
        self._rules = (
            "" if b.failure_threshold is None else str(b.failure_threshold),
            _num(b.failure_rate), _num(b.slow_call_rate),
            b.window_kind if windowed else "", repr(float(b._window.size)),
            str(b.minimum_calls), str(b.half_open_max_calls), self._ttl,
        )

    def _run(self, operation: str, source: str, args: Sequence[object], fallback: T,
             *, drop: bool = False) -> T:
        b = self._b
        return self._s.run(operation, b.name, b.clock,
                           lambda: self._s._eval(source, self._keys, args), fallback,
                           drop=drop)

    def _changes(self, text: object) -> Transitions:
        pairs = [p.split(">") for p in _text(text).split(",") if p]
        return [(self._state(old), self._state(new)) for old, new in pairs]

    def admit(self) -> Admission:
        b = self._b
        fallback: list[Any] = ["closed", -1, 0, "-1", ""]  # fail open: admitted, unrecorded
        args = (self._s._now(b.clock), repr(b.recovery_timeout), b.half_open_max_calls,
                self._ttl)
        state, epoch, consecutive, retry, changes = self._run(
            "breaker.admit", lua.BREAKER_ADMIT, args, fallback)
        phase: Phase = (self._state(_text(state)), int(epoch))
        return Admission(phase, float(retry), int(consecutive), self._changes(changes))

    def record(self, phase: Phase, failed: bool, slow: bool) -> Transitions:
        if phase[1] < 0:
            return []  # admitted while Redis was unreachable: nothing to record
        args = (self._s._now(self._b.clock), phase[1], int(failed), int(slow), *self._rules)
        return self._changes(self._run("breaker.record", lua.BREAKER_RECORD, args, "",
                                       drop=True))

    def release(self, phase: Phase) -> None:
        if phase[1] >= 0:
            self._run("breaker.release", lua.BREAKER_RELEASE, (phase[1],), 0, drop=True)

    def _read(self, mode: str) -> list[Any]:
        b = self._b
        args = (self._s._now(b.clock), repr(b.recovery_timeout), b.window_kind,
                repr(float(b._window.size)), mode)
        return self._run(f"breaker.{mode}", lua.BREAKER_STATE, args,
                         ["closed", 0, 0, 0, 0, ""])

    def state(self) -> tuple[BreakerState, Transitions]:
        state, *_, changes = self._read("state")
        return self._state(_text(state)), self._changes(changes)

    def metrics(self) -> dict[str, float]:
        _, consecutive, calls, failures, slow, _ = self._read("metrics")
        return {
            "calls": calls,
            "failures": failures,
            "slow": slow,
            "consecutive_failures": consecutive,
            "failure_rate": failures / calls if calls else 0.0,
            "slow_call_rate": slow / calls if calls else 0.0,
        }

    def force(self, state: BreakerState) -> Transitions:
        args = (self._s._now(self._b.clock), state.value, self._ttl)
        return self._changes(self._run(f"breaker.force_{state.value}", lua.BREAKER_FORCE,
                                       args, ""))


class _RedisBudget:
    def __init__(self, storage: RedisStorage, budget: RetryBudget) -> None:
        self._s = storage
        self._b = budget
        self._key = storage.key("budget", budget.name)
        self._ttl = storage._ttl_ms(budget.window)

    def _call(self, op: str, fallback: int) -> int:
        b = self._b
        args = (self._s._now(b.clock), repr(b.window / 10), repr(b.ratio), b.min_retries,
                op, self._ttl)
        return int(self._s.run(f"budget.{op}", b.name, b.clock,
                               lambda: self._s._eval(lua.BUDGET, (self._key,), args),
                               fallback))

    def record_call(self) -> None:
        self._call("call", 1)

    def try_spend(self) -> bool:
        return bool(self._call("spend", 1))

    def available(self) -> int:
        return self._call("peek", self._b.min_retries)


class _Jobs:
    """A store of jobs: its keys start with ``_base``; it never fails open."""

    def __init__(self, storage: RedisStorage, kind: str, owner: DeadLetterQueue | JobQueue
                 ) -> None:
        self._s = storage
        self._q = owner
        self._base = storage.key(kind, owner.name) + ":"

    def _run(self, operation: str, source: str, args: Sequence[object]) -> Any:
        q = self._q
        return self._s.run(operation, q.name, q.clock,
                           lambda: self._s._eval(source, (), args), _REFUSE)


class _RedisDeadLetters(_Jobs):
    def __init__(self, storage: RedisStorage, queue: DeadLetterQueue) -> None:
        super().__init__(storage, "deadletter", queue)

    def add(self, job_id: str, payload: str, error: str, attempts: int) -> None:
        now = self._s._now(self._q.clock, wall=True)
        self._run("deadletter.add", lua.DLQ_ADD,
                  (now, self._base, job_id, payload, error, attempts))

    def rows(self, *, limit: int | None = None, job_id: str | None = None
             ) -> list[tuple[str, str, str, int, float, float]]:
        flat = self._run("deadletter.list", lua.DLQ_LIST,
                         (self._base, "" if limit is None else limit, job_id or ""))
        return [
            (_text(flat[i]), _text(flat[i + 1]), _text(flat[i + 2]), int(flat[i + 3]),
             float(flat[i + 4]), float(flat[i + 5]))
            for i in range(0, len(flat), 6)
        ]

    def count(self) -> int:
        key = self._base + "order"
        return int(self._s.run("deadletter.count", self._q.name, self._q.clock,
                               lambda: self._s.client.zcard(key), _REFUSE))

    def settle(self, job_id: str, error: str | None) -> None:
        now = self._s._now(self._q.clock, wall=True)
        self._run("deadletter.settle", lua.DLQ_SETTLE, (now, self._base, job_id, error or ""))

    def purge(self, *, older_than: float | None, job_ids: Sequence[str] | None) -> list[str]:
        now = self._s._now(self._q.clock, wall=True)
        ids = () if job_ids is None else tuple(job_ids)
        gone = self._run("deadletter.purge", lua.DLQ_PURGE,
                         (now, self._base, _num(older_than),
                          "" if job_ids is None else "1", *ids))
        return [_text(g) for g in gone]


def _record(raw: Sequence[Any]) -> JobRecord:
    job_id, payload, priority, user, attempts, enqueued, error = (_text(v) for v in raw)
    return JobRecord(job_id, payload, priority, user, int(attempts), float(enqueued), error)


class _RedisQueue(_Jobs):
    def __init__(self, storage: RedisStorage, queue: JobQueue) -> None:
        super().__init__(storage, "queue", queue)

    def _now(self) -> str:
        return self._s._now(self._q.clock)

    def enqueue(self, job: JobRecord, *, max_size: int, shed: bool,
                user_limit: tuple[float, float] | None) -> tuple[str, object]:
        rate, capacity = user_limit if user_limit is not None else (None, None)
        ttl = self._s._ttl_ms(0.0 if rate is None or capacity is None else capacity / rate)
        reply = self._run("queue.enqueue", lua.QUEUE_ENQUEUE, (
            self._now(), self._base, job.job_id, job.payload, job.priority, job.user,
            max_size, "shed" if shed else "reject", _num(rate), _num(capacity), ttl))
        status = _text(reply[0])
        if status == "full":
            return status, int(reply[1])
        if status == "limited":
            return status, float(reply[1])
        if status == "shed":
            return status, _record(reply[1])
        return status, None

    def dequeue(self, lease: str, *, visibility_timeout: float, max_attempts: int
                ) -> tuple[JobRecord | None, list[str], list[JobRecord]]:
        job, redelivered, dead = self._run("queue.dequeue", lua.QUEUE_DEQUEUE, (
            self._now(), self._base, repr(float(visibility_timeout)), max_attempts, lease))
        return (_record(job) if job else None, [_text(i) for i in redelivered],
                [_record(d) for d in dead])

    def ack(self, job_id: str, lease: str) -> bool:
        return bool(self._run("queue.ack", lua.QUEUE_ACK, (self._base, job_id, lease)))

    def fail(self, job_id: str, lease: str, error: str, *, max_attempts: int
             ) -> tuple[str, JobRecord | None]:
        reply = self._run("queue.fail", lua.QUEUE_FAIL,
                          (self._now(), self._base, job_id, lease, error, max_attempts))
        status = _text(reply[0])
        return status, _record(reply[1]) if status == "dead" else None

    def bury(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._run("queue.bury", lua.QUEUE_BURY, (self._base, *job_ids))

    def stats(self) -> dict[str, int]:
        base = self._base

        def read() -> list[Any]:
            pipe = self._s.client.pipeline(transaction=False)
            for priority in ("high", "normal", "low"):
                pipe.llen(base + "ready:" + priority)
            pipe.zcard(base + "leased")
            pipe.zcard(base + "dying")
            return list(pipe.execute())

        high, normal, low, leased, dying = self._s.run("queue.stats", self._q.name,
                                                       self._q.clock, read, _REFUSE)
        return {"high": high, "normal": normal, "low": low, "leased": leased,
                "dying": dying}
