-- external: ARGV[A_OP] when the provider counted, in µs ("" for now);
-- ARGV[A_OP + 1 .. A_OP + 5] what it counts per per-window dimension (-1:
-- not reported); ARGV[A_OP + 6] how long until its window is clear, in µs.
-- -> {a1..a5}: what is held (rolling windows) or was added (token buckets).
advance(now)
local at = now
if ARGV[A_OP] ~= '' then at = math.min(n(A_OP), now) end
local used = {}
for d = 1, DIMS do used[d] = n(A_OP + d) end
local reset = n(A_OP + 6)
local out = { 0, 0, 0, 0, 0 }
if not P.bucket then
  -- The window remembers the last span only.
  at = math.max(at, now - P.span_w)
  -- Ours as the provider counts: over its window, without the guard band.
  local ours = counted_before(W, at, P.window)
  local any = false
  for d = 1, DIMS do
    if used[d] >= 0 then
      -- A quarter more: the outside client's use varies between two reports.
      local ext = math.max(math.min(used[d], SAT) - ours[d], 0)
      out[d] = math.min(ext + idiv(ext, 4), SAT)
      if out[d] > 0 then any = true end
    end
  end
  -- Up at once, down by a sixteenth of the difference per report: the outside
  -- client's use comes and goes between reports, and the hold never lapses
  -- while reports keep coming.
  if st.xu > now then
    for d = 1, DIMS do
      if out[d] < EXT[d] then out[d] = EXT[d] - idiv(EXT[d] - out[d] + 15, 16) end
      if out[d] > 0 then any = true end
    end
  end
  for d = 1, DIMS do EXT[d] = out[d] end
  if any then st.xu = math.min(now + math.min(reset, P.span_w), HORIZON) else st.xu = 0 end
else
  for d = 1, DIMS do
    local limit = P.wl[d]
    if used[d] >= 0 and limit > 0 then
      local u = math.min(used[d], limit)
      local target = math.min(at + emission(u, limit), HORIZON)
      if target > math.max(B[d], now) then
        local before = muldiv(math.max(B[d] - at, 0), limit, P.window, SAT)
        out[d] = math.max(u - before, 0)
        if B[d] <= now then B[DIMS + d] = now end
        B[d] = target
      end
    end
  end
end
save()
return out
