-- adjust: ARGV[A.OP] record id, ARGV[A.OP + 1 .. A.OP + 5] the new amounts -> {1} or {-1} (unknown)
local id = n(A.OP)
local new = { n(A.OP + 1), n(A.OP + 2), n(A.OP + 3), n(A.OP + 4), n(A.OP + 5) }
advance(now)
local r = rec_get(id)
if not r then
  save()
  return { -1 }
end
recount(r, r.a, now, false)
recount(r, new, now, true)
if has(r.counted, C.IN_BUCKETS) then adjust_buckets(r.slot, r.a, new, now, st.li == id) end
r.a = new
rec_put(id, r)
save()
return { 1 }
