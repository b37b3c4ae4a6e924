-- Cooldowns, without the limits. KEYS[1] the state hash.
-- ARGV[1] now in µs or "" for TIME; ARGV[2] "set", "for" or "get";
-- ARGV[3] the end in µs ("set") or the length in µs from now ("for");
-- ARGV[4] how long to keep the key past the end, in ms.
-- -> the end of the cooldown in force, 0 when none.
local H = KEYS[1]
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local cd = tonumber(redis.call('HGET', H, 'cd')) or 0
if ARGV[2] == 'set' or ARGV[2] == 'for' then
  local untl = tonumber(ARGV[3])
  if ARGV[2] == 'for' then untl = now + untl end
  -- No later than the horizon (2^52 µs), as the state machine keeps it.
  untl = math.min(untl, 4503599627370496)
  if untl > cd then
    cd = untl
    redis.call('HSET', H, 'cd', string.format('%.0f', cd))
    local ttl = redis.call('PTTL', H)
    local need = math.ceil((cd - now) / 1000) + tonumber(ARGV[4])
    if ttl < need then redis.call('PEXPIRE', H, need) end
  end
end
if cd > now then return { cd } end
return { 0 }
