-- reserve: ARGV[A_OP .. A_OP + 4] amounts, ARGV[A_OP + 5] max wait in µs (-1: none)
-- -> {1, slot, now, id, position}, {0, earliest, now} or {-2, slot} (the
-- slot is past the horizon: refused)
local a = { n(A_OP), n(A_OP + 1), n(A_OP + 2), n(A_OP + 3), n(A_OP + 4) }
local max_wait = n(A_OP + 5)
advance(now)
local slot = earliest(a)
if slot > HORIZON then
  save()
  return { -2, slot }
end
if max_wait >= 0 and slot - now > max_wait then
  save()
  return { 0, slot, now }
end
if st.rn == 0 then st.nr = math.max(st.nr, now) end
local id = st.nr
st.nr = st.nr + 1
local position = 0
if slot > now then position = st.qn + 1 end
st.ls = math.max(st.ls, slot)
st.li = id
local counted, day = commit(slot, a)
if slot > now then
  zadd(Q, fmt(slot), fmt(id))
  st.qn = st.qn + 1
end
if st.rn == 0 then st.rf, st.rfx = id, slot + P.retention end
st.rn, st.rl = st.rn + 1, st.rl + 1
rec_put(id, { slot = slot, a = a, expires = slot + P.retention, day = day, counted = counted })
save()
return { 1, slot, now, id, position }
