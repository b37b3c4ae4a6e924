-- status -> {now, queue depth, queue tail (0: none), cooldown end,
--            rps, rpm, rpd, tpm, tpd, input tpm, output tpm, ipm: what the
--            admitted reservations count,
--            external until (0: none), external a1..a5,
--            the same eight: what the waiting reservations hold}
advance(now)
local today = P.calendar and day_index(now) or nil
local day = { 0, 0 }
if P.calendar then day = yget(today) else day = { DR.tot[1], DR.tot[2] } end
local win = {}
for d = 1, DIMS do
  if P.bucket then
    local ahead = math.max(B[d] - now, 0)
    win[d] = muldiv(ahead, P.wl[d], P.window, SAT)
  else
    win[d] = W.tot[d]
  end
end
-- What the waiting reservations hold, in all and where they are counted now
-- (O(waiting): status is not on the hot path).
local qa, qw, qs, qd, qt = { 0, 0, 0, 0, 0 }, { 0, 0, 0, 0, 0 }, 0, { 0, 0 }, { 0, 0 }
if st.qn > 0 then
  for _, id in ipairs(redis.call('ZRANGE', Q, 0, -1)) do
    local r = rec_get(tonumber(id))
    if r then
      local inw = has(r.counted, C_IN_WINDOW) or has(r.counted, C_IN_BUCKETS)
      for d = 1, DIMS do
        qa[d] = sat_add(qa[d], r.a[d])
        if inw then qw[d] = sat_add(qw[d], r.a[d]) end
      end
      if has(r.counted, C_IN_SECOND) then qs = sat_add(qs, r.a[1]) end
      local t = today ~= nil and has(r.counted, C_IN_CALENDAR)
        and (r.day == today or (has(r.counted, C_ZONE_NEXT) and r.day + 1 == today))
      for i = 1, 2 do
        if has(r.counted, C_IN_DAY_RING) then qd[i] = sat_add(qd[i], r.a[i]) end
        if t then qt[i] = sat_add(qt[i], r.a[i]) end
      end
    end
  end
end
local dq = P.calendar and qt or qd
local depth = st.qn
save()
return { now, depth, tail(), st.cd,
  sat_sub(SEC.tot[1], qs), sat_sub(win[1], qw[1]), sat_sub(day[1], dq[1]), sat_sub(win[2], qw[2]),
  sat_sub(day[2], dq[2]), sat_sub(win[3], qw[3]), sat_sub(win[4], qw[4]), sat_sub(win[5], qw[5]),
  st.xu, EXT[1], EXT[2], EXT[3], EXT[4], EXT[5],
  qa[1], qa[1], qa[1], qa[2], qa[2], qa[3], qa[4], qa[5] }
