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
  -- Ours as the provider may have counted them: what still counted in its
  -- window when the request went, and those slotted up to a guard band
  -- later, which may have overtaken it (state.rs says why).
  local ours = counted_since(W, at, math.min(at + P.guard, now), P.window)
  local est = { 0, 0, 0, 0, 0 }
  for d = 1, DIMS do
    if used[d] >= 0 then
      -- A little more (state::EXTERNAL_MARGIN), for what it varies by between reports.
      local ext = math.max(math.min(used[d], SAT) - ours[d], 0)
      est[d] = math.min(ext + idiv(ext, K_EXTERNAL_MARGIN), SAT)
    end
  end
  -- Estimates read low rather than high, so the hold is the largest of this
  -- period of two windows and the last (state.rs says why).
  local period = idiv(now, math.max(2 * P.window, 1))
  if period == st.xq then
    for d = 1, DIMS do
      XPK[d] = math.max(XPK[d], est[d]); out[d] = math.max(EXT[d], est[d])
    end
  else
    local nxt = period == st.xq + 1
    for d = 1, DIMS do
      out[d] = math.max(nxt and XPK[d] or 0, est[d]); XPK[d] = est[d]
    end
    st.xq = period
  end
  local any = false
  for d = 1, DIMS do
    EXT[d] = out[d]
    if out[d] > 0 then any = true end
  end
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
