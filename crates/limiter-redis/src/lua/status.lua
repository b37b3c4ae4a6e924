-- status -> {now, queue depth, queue tail (0: none), cooldown end,
--            rps, rpm, rpd, tpm, tpd, input tpm, output tpm, ipm used,
--            external until (0: none), external a1..a5}
advance(now)
local day = { 0, 0 }
if P.calendar then day = yget(day_index(now)) else day = { DR.tot[1], DR.tot[2] } end
local win = {}
for d = 1, DIMS do
  if P.bucket then
    local ahead = math.max(B[d] - now, 0)
    win[d] = muldiv(ahead, P.wl[d], P.window, SAT)
  else
    win[d] = W.tot[d]
  end
end
local depth = st.qn
save()
return { now, depth, tail(), st.cd, SEC.tot[1], win[1], day[1], win[2], day[2], win[3], win[4], win[5],
  st.xu, EXT[1], EXT[2], EXT[3], EXT[4], EXT[5] }
