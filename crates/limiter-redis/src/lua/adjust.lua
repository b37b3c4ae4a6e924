-- adjust: ARGV[A_OP] record id, ARGV[A_OP + 1 .. A_OP + 5] the new amounts -> {1} or {-1} (unknown)
local id = n(A_OP)
local new = { n(A_OP + 1), n(A_OP + 2), n(A_OP + 3), n(A_OP + 4), n(A_OP + 5) }
advance(now)
local r = rec_get(id)
if not r then
  save()
  return { -1 }
end
recount(r, r.a, now, false)
recount(r, new, now, true)
if has(r.counted, C_IN_BUCKETS) then adjust_buckets(r.slot, r.a, new, now, st.li == id) end
r.a = new
rec_put(id, r)
save()
return { 1 }
