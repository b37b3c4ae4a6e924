-- llm-limiter: concurrency leases, the LeaseState of limiter-core
-- (crates/limiter-core/src/lease.rs) ported to Lua. Every operation is one
-- script call, atomic on the server; each is O(log n) in the leases and
-- waiters of the key (plus the entries it expires, once each). Times and
-- ids are integer microseconds held in Lua numbers (exact below 2^53).
--
-- KEYS[1]  sorted set: the leases held, member id, score expiry
-- KEYS[2]  sorted set: the waiters' tickets, member id, score id
-- KEYS[3]  sorted set: the same tickets, score deadline
-- KEYS[4]  hash: 'i' the last id handed out, 'n' the last now seen
-- ARGV[1]  now in µs, or "" to read the server's TIME
-- ARGV[2]  the operation and ARGV[3..] its arguments (checked by the
--          client; ids are compared as the strings given, so an id no
--          script made matches nothing):
--   acquire cap ttl_us queue(0|1) ticket("" none)
--     -> {1, id, expires, now} granted
--      | {0, ticket (0 none), ahead, held, next expiry (0 none), now}
--   renew id ttl_us  -> {expires} or {0} (not held)
--   release id       -> {1} held (lease or ticket) or {0}
--   status           -> {held, waiting, next expiry (0 none), now}
local L, LW, LD, LC = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- Slack past the last deadline before keys vanish (server clocks may step),
-- and how long the last id and now outlive that (ids follow the clock
-- anyway), in ms.
local SLACK_MS, KEEP_MS = 60000, 86400000

local function fmt(x) return string.format('%.0f', x) end

local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end

-- Time never goes back for a key: the last now is kept (even by a call
-- that changes nothing else, as LeaseState keeps it), a day when new.
local c = redis.call('HMGET', LC, 'i', 'n')
local last_id = tonumber(c[1]) or 0
local last_now = tonumber(c[2])
if not last_now or now > last_now then
  redis.call('HSET', LC, 'n', fmt(now))
  if not last_now then redis.call('PEXPIRE', LC, SLACK_MS + KEEP_MS) end
else
  now = last_now
end

-- Expire what is due at `now` (deadline <= now).
local snow = fmt(now)
redis.call('ZREMRANGEBYSCORE', L, '-inf', snow)
local gone = redis.call('ZRANGEBYSCORE', LD, '-inf', snow)
if #gone > 0 then
  for i = 1, #gone, 1000 do
    redis.call('ZREM', LW, unpack(gone, i, math.min(i + 999, #gone)))
  end
  redis.call('ZREMRANGEBYSCORE', LD, '-inf', snow)
end

-- Keeps `keys` (just written) at least until `deadline`, and the last id
-- and now a day longer.
local function keep(keys, deadline)
  local ms = math.ceil((deadline - now) / 1000) + SLACK_MS
  for _, k in ipairs(keys) do
    if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, ms) end
  end
  ms = ms + KEEP_MS
  if redis.call('PTTL', LC) < ms then redis.call('PEXPIRE', LC, ms) end
end

local function next_id()
  last_id = math.max(last_id + 1, now)
  redis.call('HSET', LC, 'i', fmt(last_id))
  return last_id
end

local function next_expiry()
  local f = redis.call('ZRANGE', L, 0, 0, 'WITHSCORES')
  if f[2] then return tonumber(f[2]) end
  return 0
end

local op = ARGV[2]
if op == 'acquire' then
  local cap, ttl, queue, given = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6]
  local ticket = nil
  local ahead
  if given ~= '' then
    local rank = redis.call('ZRANK', LW, given)
    if rank then ticket, ahead = given, rank end
  end
  if not ticket then ahead = redis.call('ZCARD', LW) end
  local held = redis.call('ZCARD', L)
  if ahead < math.max(cap - held, 0) then
    if ticket then
      redis.call('ZREM', LW, ticket)
      redis.call('ZREM', LD, ticket)
    end
    local id = next_id()
    local expires = now + ttl
    redis.call('ZADD', L, fmt(expires), fmt(id))
    keep({ L }, expires)
    return { 1, id, expires, now }
  end
  local t = 0
  if queue then
    local deadline = now + ttl
    if ticket then
      t = tonumber(ticket)
    else
      t = next_id()
      redis.call('ZADD', LW, fmt(t), fmt(t))
    end
    redis.call('ZADD', LD, fmt(deadline), fmt(t))
    keep({ LW, LD }, deadline)
  end
  return { 0, t, ahead, held, next_expiry(), now }
elseif op == 'renew' then
  local id, ttl = ARGV[3], tonumber(ARGV[4])
  if not redis.call('ZSCORE', L, id) then return { 0 } end
  local expires = now + ttl
  redis.call('ZADD', L, fmt(expires), id)
  keep({ L }, expires)
  return { expires }
elseif op == 'release' then
  local id = ARGV[3]
  if redis.call('ZREM', L, id) == 1 then return { 1 } end
  if redis.call('ZREM', LW, id) == 1 then
    redis.call('ZREM', LD, id)
    return { 1 }
  end
  return { 0 }
elseif op == 'status' then
  return { redis.call('ZCARD', L), redis.call('ZCARD', LW), next_expiry(), now }
end
return redis.error_reply('lease: unknown operation ' .. tostring(op))
