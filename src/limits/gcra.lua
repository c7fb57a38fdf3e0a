-- GCRA for one recipient, decided inside Redis so that every replica shares one budget.
-- The same rule governor applies in one replica: a burst of ARGV[2] requests, refilled one
-- every ARGV[1] microseconds. Time is the Redis server's (TIME), so replica clocks do not
-- matter. The key holds the theoretical arrival time (TAT) in microseconds.
--
-- KEYS[1]  need-to-know:limit:<recipient id>
-- ARGV[1]  emission interval in microseconds (per / count)
-- ARGV[2]  burst (count)
-- Returns  {1, 0} admitted; {0, wait} refused, wait in microseconds until one would be.
if redis.replicate_commands then
  redis.replicate_commands()
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, allow_at - now}
end
-- '%.0f': a plain number would be written with 14 significant digits and lose microseconds.
-- The key lives as long as it still constrains anyone, plus a second.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
  'PX', string.format('%.0f', math.ceil((new_tat - now) / 1000) + 1000))
return {1, 0}
