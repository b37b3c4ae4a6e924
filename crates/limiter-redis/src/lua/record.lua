-- A key's limits of record (limiter_core::LimitsRecord as JSON), beside its
-- state. KEYS[1] the record's key. ARGV[1] "get" or "set"; for "set",
-- ARGV[2] the record and ARGV[3] how long to keep it, in ms.
-- -> the record, or nil.
if ARGV[1] == 'set' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return false
end
return redis.call('GET', KEYS[1])
