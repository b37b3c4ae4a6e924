-- adjust: ARGV[23] record id, ARGV[24..28] the new amounts -> {1} or {-1} (unknown)
local id = n(23)
local new = { n(24), n(25), n(26), n(27), n(28) }
advance(now)
local r = rec_get(id)
if not r then
  save()
  return { -1 }
end
recount(r, r.a, now, false)
recount(r, new, now, true)
if has(r.counted, 16) then adjust_buckets(r.slot, r.a, new, now, st.li == id) end
r.a = new
rec_put(id, r)
save()
return { 1 }
