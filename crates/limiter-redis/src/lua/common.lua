-- llm-limiter: the FIFO admission state machine of limiter-core
-- (crates/limiter-core/src/state.rs), ported to Lua. Every operation is one
-- script call, atomic on the server. Times are integer microseconds held in
-- Lua numbers (doubles: exact up to 2^53). The bounds of the state machine
-- keep every number below that: instants up to HORIZON (2^52), amounts up to
-- 2^50, counts saturating at SAT (2^52); the one product that can pass it,
-- amount x window / limit, is done by long multiplication (muldiv).
--
-- KEYS[1]  hash: the key's state     KEYS[2]  sorted set: waiting slots
-- KEYS[3..5]  sorted sets: the non-empty buckets of the per-window,
--             per-second and rolling-day windows (member = score = index)
-- KEYS[6]  sorted set: the per-window buckets dropped within the last span
--          (fields 'x:<index>'), to count what the window held a moment ago
local H, Q = KEYS[1], KEYS[2]
local BUCKETS = K_BUCKETS
local DIMS = 5
local HORIZON, SAT = 4503599627370496, 4503599627370496

-- The contract with the client is defined once, in crates/limiter-redis/
-- src/contract.rs, and its names are used here as they are there:
--   A_*  positions in ARGV: A_NOW (now in µs, "" to read the server's TIME),
--        the limits as the client checked and derived them (A_WL: the five
--        per-window limits, A_DL: the two daily ones), and from A_OP on the
--        operation's own arguments;
--   S_*  slots of the state's scalars, one MessagePack array in field 'm'
--        (the cooldown's end is in field 'cd', written by the cooldown
--        script): S_TOTALS_W, S_TOTALS_S and S_TOTALS_D each ring's five
--        totals, S_TAT and S_FULL the five token buckets' theoretical
--        arrival times and fill instants, S_FIRST_W, S_FIRST_S and
--        S_FIRST_D a lower bound of each ring's first bucket, S_WAITING the
--        waiting count, S_FRONT_EXPIRY the front record's expiry when known
--        (0: unknown); the hints only spare calls that would find nothing;
--   C_*  the bits of a record's `counted` field, as in limiter_core::state;
--   K_*  constants of limiter_core::state (K_BUCKETS, K_EXTERNAL_MARGIN).
-- The client puts the numbers in place of the names before it loads a
-- script, so that naming them costs the server nothing per call.

local function n(i) return tonumber(ARGV[i]) end
local function fmt(x) return string.format('%.0f', x) end
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function has(bits, b) return math.floor(bits / b) % 2 == 1 end
local function sat_add(x, a) return math.min(x + a, SAT) end
local function sat_sub(x, a) if x >= SAT then return x end return math.max(x - a, 0) end
-- ceil(a * b / c), at most cap, for integers a, b < 2^53, 0 < c <= 2^50 and
-- cap <= 2^52: exact although a * b may need 103 bits.
local function muldiv(a, b, c, cap)
  if a == 0 or b == 0 then return 0 end
  local p = a * b
  -- Below 2^52 the product is exact (a rounded one is at least that), and
  -- so are idiv's products of at most p + c.
  if p < 4503599627370496 then
    local q = idiv(p, c)
    if q * c < p then q = q + 1 end
    return math.min(q, cap)
  end
  -- a * b / c = qa * b + ra * b / c, with a = qa * c + ra.
  local qa = idiv(a, c)
  local hi = qa * b
  if hi >= cap then return cap end
  local ra = a - qa * c
  -- ra * b = q * c + r (r < c), built over the bits of b from the top.
  local q, r, bit = 0, 0, 1
  while bit * 2 <= b do bit = bit * 2 end
  while bit >= 1 do
    q, r = q * 2, r * 2
    if r >= c then q, r = q + 1, r - c end
    if b >= bit then
      b = b - bit
      r = r + ra
      if r >= c then q, r = q + 1, r - c end
    end
    bit = bit / 2
  end
  if r > 0 then q = q + 1 end
  return math.min(hi + q, cap)
end

local now
if ARGV[A_NOW] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = n(A_NOW)
end

local P = {
  window = n(A_WINDOW), guard = n(A_GUARD),
  span_w = n(A_SPAN_W), span_s = n(A_SPAN_S), span_d = n(A_SPAN_D),
  wl = { n(A_WL), n(A_WL + 1), n(A_WL + 2), n(A_WL + 3), n(A_WL + 4) },
  rps = n(A_RPS), dl = { n(A_DL), n(A_DL + 1) }, spacing = n(A_SPACING),
  bucket = n(A_BUCKET) == 1, calendar = n(A_CALENDAR) == 1, reset = n(A_RESET),
  retention = n(A_RETENTION), keep = n(A_KEEP),
}
local day_on = P.dl[1] > 0 or P.dl[2] > 0
local wl_on = false
for d = 1, DIMS do if P.wl[d] > 0 then wl_on = true end end

-- The state's scalars (slots S; LAST_ID is -1 for none).
local M, cd
do
  local v = redis.call('HMGET', H, 'm', 'cd')
  M = v[1] and cmsgpack.unpack(v[1]) or {}
  cd = tonumber(v[2]) or 0
end
local function mv(i) return M[i] or 0 end
local st = { nr = mv(S_NEXT_ID), ls = mv(S_LAST_SLOT), li = M[S_LAST_ID] or -1, cd = cd,
  yf = mv(S_FIRST_DAY), yn = mv(S_DAYS), rf = mv(S_FIRST_RECORD), rn = mv(S_RECORD_SLOTS),
  rl = mv(S_LIVE_RECORDS), xp = mv(S_KEPT_UNTIL), qn = mv(S_WAITING), rfx = mv(S_FRONT_EXPIRY),
  xu = mv(S_EXT_UNTIL), xq = mv(S_EXT_PERIOD) }
local B = {} -- tat1..5, full1..5
for i = 1, 2 * DIMS do B[i] = mv(S_TAT + i - 1) end
-- External usage (the provider's count beyond ours), held until st.xu, and
-- the largest estimate of it in the period st.xq (of two windows).
local EXT, XPK = {}, {}
for d = 1, DIMS do EXT[d] = mv(S_EXT + d - 1); XPK[d] = mv(S_EXT_PEAK + d - 1) end
-- Time never goes back for a key (a server clock stepped back, or a caller's
-- clock in test mode), so FIFO holds.
now = math.max(now, mv(S_LAST_NOW))

local function ring(p, z, gi, ti, fi)
  local tot = {}
  for d = 1, DIMS do tot[d] = mv(ti + d - 1) end
  return { p = p, z = z, g = mv(gi), tot = tot, f = mv(fi) }
end
local W = ring('w', KEYS[3], S_WIDTH_W, S_TOTALS_W, S_FIRST_W)
W.hz = KEYS[6]
local SEC = ring('s', KEYS[4], S_WIDTH_S, S_TOTALS_S, S_FIRST_S)
local DR = ring('d', KEYS[5], S_WIDTH_D, S_TOTALS_D, S_FIRST_D)
-- Keys that got their first member in this call (they need a TTL).
local fresh = {}
local function zadd(key, score, member)
  if redis.call('ZADD', key, score, member) == 1 then fresh[key] = true end
end
local function unpack_n(s, k)
  local t = s and cmsgpack.unpack(s) or {}
  for i = 1, k do t[i] = t[i] or 0 end
  return t
end

-- Ring: only non-empty buckets are kept; their indexes in a sorted set ----
local function field(r, b) return r.p .. ':' .. fmt(b) end
local function rget(r, b) return unpack_n(redis.call('HGET', H, field(r, b)), DIMS) end
local function empty(r)
  for d = 1, DIMS do if r.tot[d] ~= 0 then return false end end
  return true
end
-- Writes bucket b; `existed` says whether it was held before.
local function rset(r, b, v, existed)
  local z = true
  for d = 1, DIMS do if v[d] ~= 0 then z = false end end
  if z then
    if existed then
      redis.call('HDEL', H, field(r, b))
      redis.call('ZREM', r.z, fmt(b))
    end
  else
    redis.call('HSET', H, field(r, b), cmsgpack.pack(v))
    if not existed then zadd(r.z, fmt(b), fmt(b)) end
  end
end
local function all(r)
  local idx = redis.call('ZRANGE', r.z, 0, -1)
  if #idx == 0 then return {}, {} end
  local fields = {}
  for i, b in ipairs(idx) do fields[i] = r.p .. ':' .. b; idx[i] = tonumber(b) end
  local vals = redis.call('HMGET', H, unpack(fields))
  for i = 1, #vals do vals[i] = unpack_n(vals[i], DIMS) end
  return idx, vals
end
local function expiry(r, b, span) return (b + 1) * r.g + span end

local function add_at(r, b, a)
  if empty(r) then r.f = b elseif b < r.f then r.f = b end
  local s = redis.call('HGET', H, field(r, b))
  local v = unpack_n(s, DIMS)
  for d = 1, DIMS do v[d] = sat_add(v[d], a[d]); r.tot[d] = sat_add(r.tot[d], a[d]) end
  rset(r, b, v, s ~= false and s ~= nil)
end

local function fit(r, span)
  local g = math.max(idiv(span, BUCKETS), 1)
  if r.g == g then return end
  if empty(r) then r.g = g; return end
  local idx, vals = all(r)
  for i = 1, #idx do redis.call('HDEL', H, field(r, idx[i])) end
  redis.call('DEL', r.z)
  if r.hz then
    local old = redis.call('ZRANGE', r.hz, 0, -1)
    for i = 1, #old do redis.call('HDEL', H, 'x:' .. old[i]) end
    redis.call('DEL', r.hz)
  end
  local old_g = r.g
  r.g = g
  local was = {}
  for d = 1, DIMS do was[d] = r.tot[d] >= SAT; r.tot[d] = 0 end
  for i = 1, #idx do
    local b = idiv((idx[i] + 1) * old_g + g - 1, g) - 1
    if b < 0 then b = 0 end
    add_at(r, b, vals[i])
  end
  for d = 1, DIMS do if was[d] then r.tot[d] = SAT end end
end

local function prune(r, t, span)
  -- An empty ring has no buckets (buckets that reach zero are dropped).
  if r.g == 0 or empty(r) then return end
  -- Bucket b no longer counts once (b + 1) * g + span <= t.
  local last = idiv(t - span, r.g) - 1
  if r.f > last then return end
  local idx = redis.call('ZRANGEBYSCORE', r.z, '-inf', fmt(last))
  if #idx > 0 then
    local fields = {}
    for i, b in ipairs(idx) do fields[i] = r.p .. ':' .. b end
    local vals = redis.call('HMGET', H, unpack(fields))
    for i = 1, #vals do
      local v = unpack_n(vals[i], DIMS)
      for d = 1, DIMS do r.tot[d] = sat_sub(r.tot[d], v[d]) end
    end
    redis.call('HDEL', H, unpack(fields))
    redis.call('ZREMRANGEBYSCORE', r.z, '-inf', fmt(last))
    if r.hz then
      -- Kept a span more, then dropped for good.
      local kept, scored = {}, {}
      for i, b in ipairs(idx) do
        kept[2 * i - 1] = 'x:' .. b; kept[2 * i] = vals[i]
        scored[2 * i - 1] = b; scored[2 * i] = b
      end
      redis.call('HSET', H, unpack(kept))
      if redis.call('ZADD', r.hz, unpack(scored)) > 0 then fresh[r.hz] = true end
      local gone = idiv(t - 2 * span, r.g) - 1
      local old = redis.call('ZRANGEBYSCORE', r.hz, '-inf', fmt(gone))
      if #old > 0 then
        for i = 1, #old do old[i] = 'x:' .. old[i] end
        redis.call('HDEL', H, unpack(old))
        redis.call('ZREMRANGEBYSCORE', r.hz, '-inf', fmt(gone))
      end
    end
  end
  local f = redis.call('ZRANGE', r.z, 0, 0)
  if f[1] then r.f = tonumber(f[1]) else for d = 1, DIMS do r.tot[d] = 0 end end
end

local function counts(r, slot, t, span) return r.g > 0 and (idiv(slot, r.g) + 1) * r.g + span > t end

local function readd(r, slot, a, t, span)
  if counts(r, slot, t, span) then add_at(r, idiv(slot, r.g), a) end
end

local function rsub(r, slot, a, t, span)
  if not counts(r, slot, t, span) then return end
  local b = idiv(slot, r.g)
  local s = redis.call('HGET', H, field(r, b))
  if not s then return end
  local v = unpack_n(s, DIMS)
  for d = 1, DIMS do
    if v[d] < SAT then
      local x = math.min(a[d], v[d])
      v[d] = v[d] - x; r.tot[d] = sat_sub(r.tot[d], x)
    end
  end
  rset(r, b, v, true)
end

-- hold, hold_to: amounts counted hold_to an instant, as one more bucket.
local function rearliest(r, from, span, a, lim, hold, hold_to)
  local t = {}
  for d = 1, DIMS do t[d] = r.tot[d] end
  local holding = false
  if hold and hold_to > from then
    for d = 1, DIMS do if hold[d] > 0 then holding = true end end
  end
  if holding then for d = 1, DIMS do t[d] = sat_add(t[d], hold[d]) end end
  local function fits()
    for d = 1, DIMS do if lim[d] ~= 0 and t[d] + a[d] > lim[d] then return false end end
    return true
  end
  -- Dropping buckets only lowers the totals: if all fit, so does the rest.
  if fits() then return from end
  local at = from
  local idx, vals = all(r)
  for i = 1, #idx do
    local e = expiry(r, idx[i], span)
    if e > from and fits() then return at end
    for d = 1, DIMS do t[d] = sat_sub(t[d], vals[i][d]) end
    at = math.max(at, e)
  end
  if holding and not fits() then at = math.max(at, hold_to) end
  return at
end

-- What the reservations slotted by `upto` that still counted at `at`
-- hold, to the precision of a bucket: the buckets that start by `upto` and
-- had not expired at `at`.
local function counted_since(r, at, upto, span)
  local out = { 0, 0, 0, 0, 0 }
  if r.g == 0 then return out end
  local hi = idiv(upto, r.g)
  local lo = idiv(at - span, r.g) - 1
  local function add(z, prefix)
    local idx = redis.call('ZRANGEBYSCORE', z, '(' .. fmt(lo), fmt(hi))
    if #idx == 0 then return end
    local fields = {}
    for i, b in ipairs(idx) do fields[i] = prefix .. b end
    local vals = redis.call('HMGET', H, unpack(fields))
    for i = 1, #vals do
      local v = unpack_n(vals[i], DIMS)
      for d = 1, DIMS do out[d] = sat_add(out[d], v[d]) end
    end
  end
  add(r.z, r.p .. ':')
  if r.hz then add(r.hz, 'x:') end
  return out
end

-- Calendar (crates/limiter-core/src/calendar.rs) ----------------------------
-- The zone's offsets around now, from the client (the tz database is on
-- its side): ZO[1] in force before ZT[1], ZO[i + 1] from ZT[i] on.
local MIN, DAY = 60000000, 86400000000
local ZO, ZT = {}, {}
if P.calendar then
  local i = 0
  for v in string.gmatch(ARGV[A_ZONE], '[^,]+') do
    if i % 2 == 0 then ZO[#ZO + 1] = tonumber(v) else ZT[#ZT + 1] = tonumber(v) end
    i = i + 1
  end
end
local function offset_at(t)
  local o = ZO[1]
  for i = 1, #ZT do
    if t < ZT[i] then break end
    o = ZO[i + 1]
  end
  return o
end
local function raw_index(t) return idiv(t + offset_at(t) - P.reset * MIN, DAY) end
-- The first instant whose local reading reaches the day's reset time: in
-- each stretch of one offset the earliest that does; the first stretch with
-- one wins.
local function day_start(day)
  local l = day * DAY + P.reset * MIN
  local from
  for i = 1, #ZT do
    local t = l - ZO[i]
    if from and t < from then t = from end
    if t < ZT[i] then return t end
    from = ZT[i]
  end
  local t = l - ZO[#ZO]
  if from and t < from then t = from end
  return t
end
local function day_index(t)
  local d = raw_index(t)
  if day_start(d + 1) <= t then return d + 1 end
  return d
end
local function calendar_day(t)
  local di = day_index(t)
  return di, t + P.guard >= day_start(di + 1)
end

-- Calendar-day counts -------------------------------------------------------
local function yget(day)
  if st.yn == 0 or day < st.yf or day >= st.yf + st.yn then return { 0, 0 } end
  return unpack_n(redis.call('HGET', H, 'y:' .. fmt(day)), 2)
end
local function yset(day, v)
  if v[1] == 0 and v[2] == 0 then redis.call('HDEL', H, 'y:' .. fmt(day))
  else redis.call('HSET', H, 'y:' .. fmt(day), cmsgpack.pack(v)) end
end
local function yadd(day, a)
  if st.yn == 0 then st.yf = day end
  if day < st.yf then return end
  if day - st.yf + 1 > st.yn then st.yn = day - st.yf + 1 end
  local v = yget(day)
  yset(day, { sat_add(v[1], a[1]), sat_add(v[2], a[2]) })
end
local function ysub(day, a)
  if day < st.yf or day >= st.yf + st.yn then return end
  local v = yget(day)
  yset(day, { sat_sub(v[1], a[1]), sat_sub(v[2], a[2]) })
end
local function yprune(today)
  while st.yn > 0 and st.yf < today do
    redis.call('HDEL', H, 'y:' .. fmt(st.yf))
    st.yf, st.yn = st.yf + 1, st.yn - 1
  end
end

-- Records: "slot,a1..a5,expires,day,counted" -------------------------------
local function rec_get(id)
  local s = redis.call('HGET', H, 'r:' .. fmt(id))
  if not s then return nil end
  local v = cmsgpack.unpack(s)
  return { slot = v[1], a = { v[2], v[3], v[4], v[5], v[6] }, expires = v[7], day = v[8], counted = v[9] }
end
local function rec_put(id, r)
  redis.call('HSET', H, 'r:' .. fmt(id), cmsgpack.pack({ r.slot, r.a[1], r.a[2], r.a[3], r.a[4], r.a[5], r.expires, r.day, r.counted }))
end
local function rec_trim(t)
  while st.rn > 0 do
    if st.rfx > t then return end
    local r = rec_get(st.rf)
    if r and r.expires > t then
      st.rfx = r.expires
      return
    end
    if r then
      st.rl = st.rl - 1
      redis.call('HDEL', H, 'r:' .. fmt(st.rf))
    end
    st.rf, st.rn, st.rfx = st.rf + 1, st.rn - 1, 0
  end
end

-- The state machine ---------------------------------------------------------
local function emission(amount, limit)
  if limit == 0 or amount == 0 then return 0 end
  return muldiv(amount, P.window, limit, HORIZON)
end
local function req_only(a) return { a[1], 0, 0, 0, 0 } end
local function as_ring(a) return { a[1], a[2], 0, 0, 0 } end

local function advance(t)
  fit(W, P.span_w); fit(SEC, P.span_s); fit(DR, P.span_d)
  prune(W, t, P.span_w); prune(SEC, t, P.span_s); prune(DR, t, P.span_d)
  if P.calendar then yprune(day_index(t)) end
  if st.qn > 0 then
    st.qn = st.qn - redis.call('ZREMRANGEBYSCORE', Q, '-inf', fmt(t))
  end
  rec_trim(t)
  if st.xu <= t then
    for d = 1, DIMS do EXT[d] = 0; XPK[d] = 0 end
    st.xu = 0
  end
end

local function tail()
  if st.qn == 0 then return 0 end
  local z = redis.call('ZRANGE', Q, -1, -1, 'WITHSCORES')
  if z[2] then return tonumber(z[2]) end
  return 0
end

local function earliest(a)
  local at = math.max(now, tail(), st.cd)
  if P.spacing > 0 and st.ls > 0 then at = math.max(at, st.ls + P.spacing) end
  if not P.bucket then
    at = rearliest(W, at, P.span_w, a, P.wl, EXT, st.xu)
  else
    local tau = P.window - P.guard
    for d = 1, DIMS do
      local inc = emission(a[d], P.wl[d])
      if inc > 0 then at = math.max(at, math.max(B[d] + inc - tau, 0)) end
    end
  end
  -- Past the horizon the reservation is refused, whatever else it waits for.
  if at > HORIZON then return at end
  if P.rps > 0 then at = rearliest(SEC, at, P.span_s, a, { P.rps, 0, 0, 0, 0 }) end
  if day_on then
    if not P.calendar then
      at = rearliest(DR, at, P.span_d, a, as_ring(P.dl))
    else
      local function fits(u)
        for i = 1, 2 do if P.dl[i] ~= 0 and u[i] + a[i] > P.dl[i] then return false end end
        return true
      end
      for _ = 1, st.yn + 3 do
        local di, zn = calendar_day(at)
        if fits(yget(di)) and (not zn or fits(yget(di + 1))) then break end
        at = math.max(at, day_start(di + 1))
      end
    end
  end
  return at
end

local function commit(slot, a)
  local counted, day = 0, 0
  if not P.bucket and wl_on then add_at(W, idiv(slot, W.g), a); counted = counted + C_IN_WINDOW end
  if P.rps > 0 then add_at(SEC, idiv(slot, SEC.g), req_only(a)); counted = counted + C_IN_SECOND end
  if day_on then
    if not P.calendar then
      add_at(DR, idiv(slot, DR.g), as_ring(a)); counted = counted + C_IN_DAY_RING
    else
      local di, zn = calendar_day(slot)
      yadd(di, { a[1], a[2] }); day = di; counted = counted + C_IN_CALENDAR
      if zn then yadd(di + 1, { a[1], a[2] }); counted = counted + C_ZONE_NEXT end
    end
  end
  if P.bucket then
    for d = 1, DIMS do
      local inc = emission(a[d], P.wl[d])
      if B[d] <= slot then B[DIMS + d] = slot; B[d] = math.min(slot + inc, HORIZON)
      else B[d] = math.min(B[d] + inc, HORIZON) end
    end
    counted = counted + C_IN_BUCKETS
  end
  return counted, day
end

local function recount(r, a, t, add)
  local rings = { { C_IN_WINDOW, W, P.span_w, a }, { C_IN_SECOND, SEC, P.span_s, req_only(a) },
    { C_IN_DAY_RING, DR, P.span_d, as_ring(a) } }
  for _, x in ipairs(rings) do
    if has(r.counted, x[1]) then
      if add then readd(x[2], r.slot, x[4], t, x[3]) else rsub(x[2], r.slot, x[4], t, x[3]) end
    end
  end
  if has(r.counted, C_IN_CALENDAR) then
    local ds = { r.day }
    if has(r.counted, C_ZONE_NEXT) then ds[2] = r.day + 1 end
    for _, day in ipairs(ds) do
      if add then yadd(day, { a[1], a[2] }) else ysub(day, { a[1], a[2] }) end
    end
  end
end

local function adjust_buckets(slot, old, new, t, latest)
  for d = 1, DIMS do
    local before, after = emission(old[d], P.wl[d]), emission(new[d], P.wl[d])
    if after > before then
      if B[d] <= t then B[d] = t; B[DIMS + d] = t end
      B[d] = math.min(B[d] + (after - before), HORIZON)
    elseif latest and slot >= B[DIMS + d] and B[d] < HORIZON then
      B[d] = math.max(B[d] - (before - after), 0)
    end
  end
end

local function save()
  -- Keep the state while anything in it may still count, refreshing the
  -- TTLs only when the deadline must move (with as much slack again).
  local needed = math.max(st.ls, st.cd, st.xu, now) + P.keep
  if st.xp < needed then
    st.xp = needed + P.keep
    local ttl = math.ceil((st.xp - now) / 1000)
    for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttl) end
  else
    local ttl = math.ceil((st.xp - now) / 1000)
    for key in pairs(fresh) do redis.call('PEXPIRE', key, ttl) end
  end
  -- Filled in slot order, so that the array grows as an array.
  local m = {}
  m[S_NEXT_ID] = st.nr; m[S_LAST_SLOT] = st.ls; m[S_LAST_ID] = st.li
  m[S_FIRST_DAY] = st.yf; m[S_DAYS] = st.yn
  m[S_FIRST_RECORD] = st.rf; m[S_RECORD_SLOTS] = st.rn; m[S_LIVE_RECORDS] = st.rl
  m[S_LAST_NOW] = now; m[S_KEPT_UNTIL] = st.xp
  m[S_WIDTH_W] = W.g; m[S_WIDTH_S] = SEC.g; m[S_WIDTH_D] = DR.g
  for d = 1, DIMS do m[S_TOTALS_W + d - 1] = W.tot[d] end
  for d = 1, DIMS do m[S_TOTALS_S + d - 1] = SEC.tot[d] end
  for d = 1, DIMS do m[S_TOTALS_D + d - 1] = DR.tot[d] end
  for i = 1, 2 * DIMS do m[S_TAT + i - 1] = B[i] end
  m[S_FIRST_W] = W.f; m[S_FIRST_S] = SEC.f; m[S_FIRST_D] = DR.f
  m[S_WAITING] = st.qn; m[S_FRONT_EXPIRY] = st.rfx
  for d = 1, DIMS do m[S_EXT + d - 1] = EXT[d] end
  m[S_EXT_UNTIL] = st.xu
  for d = 1, DIMS do m[S_EXT_PEAK + d - 1] = XPK[d] end
  m[S_EXT_PERIOD] = st.xq
  redis.call('HSET', H, 'm', cmsgpack.pack(m))
end
