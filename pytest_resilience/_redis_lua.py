"""The Lua scripts behind ``RedisStorage``: one atomic script per state change.

Each script runs whole or not at all on the server (Redis runs one script at a time), so
no reader ever sees half an update and a lost reply cannot leave state half written.
Times come from ``ARGV[1]``: a number (the component's clock) or ``''`` for the server's
``TIME``, so hosts with drifting clocks still agree. Numbers are stored with
``%.17g`` (Lua's default ``tostring`` keeps only 14 digits).
"""

from __future__ import annotations

__all__ = [
    "BREAKER_ADMIT",
    "BREAKER_FORCE",
    "BREAKER_RECORD",
    "BREAKER_RELEASE",
    "BREAKER_STATE",
    "BUCKET",
    "BUDGET",
    "DLQ_ADD",
    "DLQ_LIST",
    "DLQ_PURGE",
    "DLQ_SETTLE",
    "QUEUE_ACK",
    "QUEUE_BURY",
    "QUEUE_DEQUEUE",
    "QUEUE_ENQUEUE",
    "QUEUE_FAIL",
]

_PRELUDE = """
local function clock(v)
  if v ~= '' then return tonumber(v) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function f(x) return string.format('%.17g', x) end
"""

# take(key, rate, capacity, initial, n, ttl_ms) -> {granted, wait, tokens}; n = 0 peeks.
_BUCKET_LIB = """
local function take(key, now, rate, cap, init, n, ttl)
  local st = redis.call('HMGET', key, 't', 'l')
  local tokens, last = tonumber(st[1]), tonumber(st[2])
  if not tokens then tokens, last = init, now end
  if now > last then
    tokens = math.min(cap, tokens + (now - last) * rate)
    last = now
  end
  local granted, wait = 0, 0
  if n > 0 then
    if tokens >= n then
      tokens = tokens - n
      granted = 1
    else
      wait = (n - tokens) / rate
    end
  end
  redis.call('HSET', key, 't', f(tokens), 'l', f(last))
  redis.call('PEXPIRE', key, ttl)
  return {granted, f(wait), f(tokens)}
end
"""

#: KEYS: bucket. ARGV: now, rate, capacity, initial, n, ttl_ms.
BUCKET = _PRELUDE + _BUCKET_LIB + """
return take(KEYS[1], clock(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
            tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])
"""

# Breaker hash fields: s state, e epoch, o opened at, hs half-open since, c consecutive
# failures, tr half-open trials admitted, ts trial successes, wc/wf/ws window calls,
# failures and slow calls. KEYS[2] is the window: a list of "fs" flags (count window)
# or "fs<time>" (time window), oldest first.
_BREAKER_LIB = """
local H, W = KEYS[1], KEYS[2]
local function get(field, default)
  local v = redis.call('HGET', H, field)
  if v then return v end
  return default
end
local changes = {}
local function to(new, now)
  local old = get('s', 'closed')
  redis.call('HSET', H, 's', new, 'e', tonumber(get('e', '0')) + 1, 'tr', 0, 'ts', 0)
  if new == 'open' then
    redis.call('HSET', H, 'o', f(now))
  else
    redis.call('HSET', H, 'c', 0, 'wc', 0, 'wf', 0, 'ws', 0)
    redis.call('DEL', W)
    if new == 'half_open' then redis.call('HSET', H, 'hs', f(now)) end
  end
  table.insert(changes, old .. '>' .. new)
end
local function touch(ttl)
  redis.call('PEXPIRE', H, ttl)
  redis.call('PEXPIRE', W, ttl)
end
local function drop(entry, counts)
  counts[1] = counts[1] - 1
  if string.sub(entry, 1, 1) == '1' then counts[2] = counts[2] - 1 end
  if string.sub(entry, 2, 2) == '1' then counts[3] = counts[3] - 1 end
end
local function expire(now, size, counts)
  local horizon = now - size
  while true do
    local head = redis.call('LINDEX', W, 0)
    if not head or tonumber(string.sub(head, 3)) > horizon then return end
    redis.call('LPOP', W)
    drop(head, counts)
  end
end
local function counts()
  return {tonumber(get('wc', '0')), tonumber(get('wf', '0')), tonumber(get('ws', '0'))}
end
"""

#: KEYS: hash, window. ARGV: now, recovery_timeout, half_open_max_calls, ttl_ms.
#: -> {state, epoch, consecutive, retry_after (-1: admitted), "old>new,..."}
BREAKER_ADMIT = _PRELUDE + _BREAKER_LIB + """
local now, rt, max = clock(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = get('s', 'closed')
local retry = -1
if s == 'open' then
  local wait = tonumber(get('o', '0')) + rt - now
  if wait > 0 then retry = wait else to('half_open', now); s = 'half_open' end
end
if s == 'half_open' and retry < 0 then
  local tr = tonumber(get('tr', '0'))
  if tr < max then
    redis.call('HSET', H, 'tr', tr + 1)
  elseif now >= tonumber(get('hs', '0')) + rt then
    -- every trial slot is held past the recovery timeout: their callers are gone
    to('open', now); s = 'open'; retry = rt
  else
    retry = 0
  end
end
touch(ARGV[4])
return {s, tonumber(get('e', '0')), tonumber(get('c', '0')), f(retry),
        table.concat(changes, ',')}
"""

#: KEYS: hash, window. ARGV: now, epoch, failed, slow, threshold, failure_rate,
#: slow_call_rate, window kind ('' when no rate rule), window size, minimum_calls,
#: half_open_max_calls, ttl_ms (empty strings for rules not set). -> "old>new,..."
BREAKER_RECORD = _PRELUDE + _BREAKER_LIB + """
local now = clock(ARGV[1])
if tonumber(get('e', '0')) ~= tonumber(ARGV[2]) then return '' end
local failed, slow = ARGV[3] == '1', ARGV[4] == '1'
local s = get('s', 'closed')
if s == 'closed' then
  local c = 0
  if failed then c = tonumber(get('c', '0')) + 1 end
  redis.call('HSET', H, 'c', c)
  local trip = ARGV[5] ~= '' and c >= tonumber(ARGV[5])
  local kind = ARGV[8]
  if kind ~= '' then
    local size, w = tonumber(ARGV[9]), counts()
    local flags = (failed and '1' or '0') .. (slow and '1' or '0')
    if kind == 'count' then
      if w[1] >= size then drop(redis.call('LPOP', W), w) end
      redis.call('RPUSH', W, flags)
    else
      expire(now, size, w)
      redis.call('RPUSH', W, flags .. f(now))
    end
    w[1] = w[1] + 1
    if failed then w[2] = w[2] + 1 end
    if slow then w[3] = w[3] + 1 end
    redis.call('HSET', H, 'wc', w[1], 'wf', w[2], 'ws', w[3])
    if not trip and w[1] >= tonumber(ARGV[10]) then
      trip = (ARGV[6] ~= '' and w[2] >= tonumber(ARGV[6]) * w[1])
        or (ARGV[7] ~= '' and w[3] >= tonumber(ARGV[7]) * w[1])
    end
  end
  if trip then to('open', now) end
elseif s == 'half_open' then
  if failed or (slow and ARGV[7] ~= '') then
    to('open', now)
  else
    local ts = tonumber(get('ts', '0')) + 1
    redis.call('HSET', H, 'ts', ts)
    if ts >= tonumber(ARGV[11]) then to('closed', now) end
  end
end
touch(ARGV[12])
return table.concat(changes, ',')
"""

#: KEYS: hash, window. ARGV: epoch. A half-open trial ended without a verdict.
BREAKER_RELEASE = _PRELUDE + _BREAKER_LIB + """
if tonumber(get('e', '0')) == tonumber(ARGV[1]) and get('s', 'closed') == 'half_open' then
  redis.call('HSET', H, 'tr', math.max(0, tonumber(get('tr', '0')) - 1))
end
return 1
"""

#: KEYS: hash, window. ARGV: now, target state, ttl_ms. -> "old>new"
BREAKER_FORCE = _PRELUDE + _BREAKER_LIB + """
if get('s', 'closed') ~= ARGV[2] then to(ARGV[2], clock(ARGV[1])) end
touch(ARGV[3])
return table.concat(changes, ',')
"""

#: KEYS: hash, window. ARGV: now, recovery_timeout, window kind, window size, mode
#: ('state': OPEN turns HALF_OPEN once due; 'metrics': expire the time window).
#: -> {state, consecutive, calls, failures, slow, "old>new"}
BREAKER_STATE = _PRELUDE + _BREAKER_LIB + """
local now = clock(ARGV[1])
local s = get('s', 'closed')
if ARGV[5] == 'state' and s == 'open'
    and now >= tonumber(get('o', '0')) + tonumber(ARGV[2]) then
  to('half_open', now); s = 'half_open'
end
local w = counts()
if ARGV[5] == 'metrics' and ARGV[3] == 'time' then
  expire(now, tonumber(ARGV[4]), w)
  if redis.call('EXISTS', H) == 1 then
    redis.call('HSET', H, 'wc', w[1], 'wf', w[2], 'ws', w[3])
  end
end
return {s, tonumber(get('c', '0')), w[1], w[2], w[3], table.concat(changes, ',')}
"""

#: KEYS: hash of per-slot counts ("c<slot>", "r<slot>"). ARGV: now, slot width,
#: ratio, min_retries, op ('call' | 'spend' | 'peek'), ttl_ms.
#: -> 1/0 for 'spend', retries available for 'peek'
BUDGET = _PRELUDE + """
local H = KEYS[1]
local slot = math.floor(clock(ARGV[1]) / tonumber(ARGV[2]))
local ratio, min = tonumber(ARGV[3]), tonumber(ARGV[4])
local all = redis.call('HGETALL', H)
local calls, retries = 0, 0
for i = 1, #all, 2 do
  local field, n = all[i], tonumber(all[i + 1])
  if tonumber(string.sub(field, 2)) <= slot - 10 then
    redis.call('HDEL', H, field)
  elseif string.sub(field, 1, 1) == 'c' then
    calls = calls + n
  else
    retries = retries + n
  end
end
local result = 1
if ARGV[5] == 'call' then
  redis.call('HINCRBY', H, 'c' .. slot, 1)
elseif ARGV[5] == 'spend' then
  if retries + 1 > ratio * calls + min then
    result = 0
  else
    redis.call('HINCRBY', H, 'r' .. slot, 1)
  end
else
  return math.max(0, math.floor(ratio * calls + min - retries))
end
redis.call('PEXPIRE', H, ARGV[6])
return result
"""

# Dead-letter keys: <base>order (zset by insertion), <base>added (zset by added_at),
# <base>seq (counter) and one hash per job, <base>j:<id>: p payload, e error,
# a attempts, t added_at, u updated_at. They never expire: dead letters are data.

#: ARGV: now (wall), base, job_id, payload, error, attempts.
DLQ_ADD = _PRELUDE + """
local now, base, id = clock(ARGV[1]), ARGV[2], ARGV[3]
local seq = redis.call('INCR', base .. 'seq')
redis.call('DEL', base .. 'j:' .. id)
redis.call('HSET', base .. 'j:' .. id, 'p', ARGV[4], 'e', ARGV[5], 'a', ARGV[6],
           't', f(now), 'u', f(now))
redis.call('ZADD', base .. 'order', seq, id)
redis.call('ZADD', base .. 'added', now, id)
return 1
"""

#: ARGV: base, limit ('' = all), job_id ('' = every job). -> flat {id, p, e, a, t, u, ...}
DLQ_LIST = """
local base = ARGV[1]
local ids
if ARGV[3] ~= '' then
  ids = {ARGV[3]}
elseif ARGV[2] == '' then
  ids = redis.call('ZRANGE', base .. 'order', 0, -1)
elseif tonumber(ARGV[2]) <= 0 then
  ids = {}
else
  ids = redis.call('ZRANGE', base .. 'order', 0, tonumber(ARGV[2]) - 1)
end
local out = {}
for _, id in ipairs(ids) do
  local r = redis.call('HMGET', base .. 'j:' .. id, 'p', 'e', 'a', 't', 'u')
  if r[1] then
    table.insert(out, id)
    for i = 1, 5 do table.insert(out, r[i]) end
  end
end
return out
"""

#: ARGV: now (wall), base, job_id, error ('' = delivered: remove the job).
DLQ_SETTLE = _PRELUDE + """
local base, id = ARGV[2], ARGV[3]
local key = base .. 'j:' .. id
if redis.call('EXISTS', key) == 0 then return 0 end
if ARGV[4] == '' then
  redis.call('DEL', key)
  redis.call('ZREM', base .. 'order', id)
  redis.call('ZREM', base .. 'added', id)
else
  redis.call('HINCRBY', key, 'a', 1)
  redis.call('HSET', key, 'e', ARGV[4], 'u', f(clock(ARGV[1])))
end
return 1
"""

#: ARGV: now (wall), base, older_than ('' = any age), by_id ('1': only ARGV[5..]).
#: -> the ids removed, oldest first
DLQ_PURGE = _PRELUDE + """
local now, base = clock(ARGV[1]), ARGV[2]
local wanted = nil
if ARGV[4] == '1' then
  wanted = {}
  for i = 5, #ARGV do wanted[ARGV[i]] = true end
end
local gone = {}
for _, id in ipairs(redis.call('ZRANGE', base .. 'order', 0, -1)) do
  local keep = wanted ~= nil and not wanted[id]
  if not keep and ARGV[3] ~= '' then
    keep = tonumber(redis.call('ZSCORE', base .. 'added', id)) > now - tonumber(ARGV[3])
  end
  if not keep then
    redis.call('DEL', base .. 'j:' .. id)
    redis.call('ZREM', base .. 'order', id)
    redis.call('ZREM', base .. 'added', id)
    table.insert(gone, id)
  end
end
return gone
"""

# Job-queue keys: <base>ready:<priority> (lists, oldest first), <base>leased (zset by
# lease deadline), <base>dying (zset: jobs on their way to the dead-letter queue) and one
# hash per job, <base>j:<id>: p payload, r priority, u user, a attempts, t enqueued at,
# l lease token, e last error. They never expire: jobs are data.
_QUEUE_LIB = """
local P = {'high', 'normal', 'low'}
local function record(base, id)
  local r = redis.call('HMGET', base .. 'j:' .. id, 'p', 'r', 'u', 'a', 't', 'e')
  return {id, r[1], r[2], r[3], r[4], r[5], r[6]}
end
"""

#: ARGV: now, base, job_id, payload, priority, user, max_size, overflow ('reject' |
#: 'shed'), user rate, user capacity ('' = no per-user limit), user bucket ttl_ms.
#: -> {'ok'} | {'dup'} | {'full', size} | {'limited', wait} | {'shed', record}
QUEUE_ENQUEUE = _PRELUDE + _BUCKET_LIB + _QUEUE_LIB + """
local now, base, id, prio, user = clock(ARGV[1]), ARGV[2], ARGV[3], ARGV[5], ARGV[6]
local key = base .. 'j:' .. id
if redis.call('EXISTS', key) == 1 then return {'dup'} end
local rank = {high = 1, normal = 2, low = 3}
local size = redis.call('ZCARD', base .. 'leased')
for _, p in ipairs(P) do size = size + redis.call('LLEN', base .. 'ready:' .. p) end
local shed = nil
if size >= tonumber(ARGV[7]) then
  if ARGV[8] == 'shed' then
    for i = 3, rank[prio] + 1, -1 do
      if redis.call('LLEN', base .. 'ready:' .. P[i]) > 0 then shed = P[i]; break end
    end
  end
  if not shed then return {'full', size} end
end
if user ~= '' and ARGV[9] ~= '' then
  local cap = tonumber(ARGV[10])
  local got = take(base .. 'user:' .. user, now, tonumber(ARGV[9]), cap, cap, 1, ARGV[11])
  if got[1] == 0 then return {'limited', got[2]} end
end
local out = {'ok'}
if shed then
  local victim = redis.call('RPOP', base .. 'ready:' .. shed)
  redis.call('HSET', base .. 'j:' .. victim, 'e', 'shed: the queue was full')
  redis.call('ZADD', base .. 'dying', now, victim)
  out = {'shed', record(base, victim)}
end
redis.call('HSET', key, 'p', ARGV[4], 'r', prio, 'u', user, 'a', 0, 't', f(now), 'l', '',
           'e', '')
redis.call('RPUSH', base .. 'ready:' .. prio, id)
return out
"""

#: ARGV: now, base, visibility_timeout, max_attempts, lease token.
#: -> {job record or {}, {redelivered ids}, {dead records}}
QUEUE_DEQUEUE = _PRELUDE + _QUEUE_LIB + """
local now, base, vis, max = clock(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local redelivered, dead = {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', base .. 'leased', '-inf', f(now))) do
  local key = base .. 'j:' .. id
  redis.call('ZREM', base .. 'leased', id)
  redis.call('HSET', key, 'l', '')
  local a = tonumber(redis.call('HGET', key, 'a'))
  if a >= max then
    redis.call('HSET', key, 'e', 'visibility timeout expired on attempt ' .. a)
    redis.call('ZADD', base .. 'dying', now, id)
    table.insert(dead, record(base, id))
  else
    redis.call('LPUSH', base .. 'ready:' .. redis.call('HGET', key, 'r'), id)
    table.insert(redelivered, id)
  end
end
-- jobs left dying by a process that died before it buried them
for _, id in ipairs(redis.call('ZRANGEBYSCORE', base .. 'dying', '-inf', f(now - vis))) do
  redis.call('ZADD', base .. 'dying', now, id)
  table.insert(dead, record(base, id))
end
local job = {}
for _, p in ipairs(P) do
  local id = redis.call('LPOP', base .. 'ready:' .. p)
  if id then
    redis.call('HINCRBY', base .. 'j:' .. id, 'a', 1)
    redis.call('HSET', base .. 'j:' .. id, 'l', ARGV[5])
    redis.call('ZADD', base .. 'leased', f(now + vis), id)
    job = record(base, id)
    break
  end
end
return {job, redelivered, dead}
"""

#: ARGV: base, job_id, lease token. -> 1 acknowledged, 0 the lease is not current
QUEUE_ACK = """
local base, id = ARGV[1], ARGV[2]
if redis.call('HGET', base .. 'j:' .. id, 'l') ~= ARGV[3] then return 0 end
redis.call('ZREM', base .. 'leased', id)
redis.call('DEL', base .. 'j:' .. id)
return 1
"""

#: ARGV: now, base, job_id, lease token, error, max_attempts.
#: -> {'stale'} | {'retry'} | {'dead', record}
QUEUE_FAIL = _PRELUDE + _QUEUE_LIB + """
local now, base, id = clock(ARGV[1]), ARGV[2], ARGV[3]
local key = base .. 'j:' .. id
if redis.call('HGET', key, 'l') ~= ARGV[4] then return {'stale'} end
redis.call('ZREM', base .. 'leased', id)
redis.call('HSET', key, 'l', '', 'e', ARGV[5])
if tonumber(redis.call('HGET', key, 'a')) >= tonumber(ARGV[6]) then
  redis.call('ZADD', base .. 'dying', now, id)
  return {'dead', record(base, id)}
end
redis.call('LPUSH', base .. 'ready:' .. redis.call('HGET', key, 'r'), id)
return {'retry'}
"""

#: ARGV: base, ids... Forget jobs the dead-letter queue now holds.
QUEUE_BURY = """
local base = ARGV[1]
for i = 2, #ARGV do
  if redis.call('ZREM', base .. 'dying', ARGV[i]) == 1 then
    redis.call('DEL', base .. 'j:' .. ARGV[i])
  end
end
return 1
"""
