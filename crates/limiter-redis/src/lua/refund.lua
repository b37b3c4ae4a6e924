-- refund: ARGV[A_OP] record id -> {1} or {-1} (unknown)
local id = n(A_OP)
advance(now)
local r = rec_get(id)
if not r then
  save()
  return { -1 }
end
redis.call('HDEL', H, 'r:' .. fmt(id))
st.rl = st.rl - 1
if id == st.rf then st.rfx = 0 end
rec_trim(0)
st.qn = st.qn - redis.call('ZREM', Q, fmt(id))
recount(r, r.a, now, false)
if has(r.counted, C_IN_BUCKETS) and st.li == id then adjust_buckets(r.slot, r.a, { 0, 0, 0, 0, 0 }, now, true) end
if st.li == id then st.li = -1 end
save()
return { 1 }
