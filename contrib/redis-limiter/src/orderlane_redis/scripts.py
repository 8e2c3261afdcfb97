"""The three Lua scripts, each one atomic on the Redis server and timed by its ``TIME``.

Keys of one credential (``{key}`` is a hash tag, so a cluster keeps them on one slot)::

    <prefix>:{key}:q0 q1 q2   who waits: cancels, orders, inquiries (a sorted set each, by arrival)
    <prefix>:{key}:lease      until when each waiting process still counts (it refreshes it)
    <prefix>:{key}:pause      until when the broker asked every process to pause
    <prefix>:{key}:state      permit ids, grants since the last inquiry, pauses, the limits
    <prefix>:{key}:log:N      limit N's sliding log: the permits granted, scored by their time

Times are microseconds of the Redis server's clock (``TIME``); a client's clock is never read.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "PENALIZE", "RESTAMP"]

# KEYS: q0 q1 q2 lease pause state log... ; ARGV: member, requests waiting per class ("3 0 1"),
# lease (us),
# grants between inquiries, limits text, key ttl (ms), then span (us) and limit of each log.
# Returns {1, class, permit id, now} (granted), {0, wait us} (-1: another process's turn),
# {2, limits} (the key is limited otherwise by another process).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local member = ARGV[1]
local state = KEYS[6]
local agreed = redis.call('HGET', state, 'limits')
if agreed and agreed ~= ARGV[5] then
  return {2, agreed}
end
local lease_until = now + tonumber(ARGV[3])
local waiting = {}
for count in string.gmatch(ARGV[2], '%d+') do
  waiting[#waiting + 1] = tonumber(count)
end
for c = 0, 2 do
  local entry = member .. '/' .. c
  if waiting[c + 1] > 0 then
    redis.call('ZADD', KEYS[c + 1], 'NX', now, entry)
    redis.call('HSET', KEYS[4], entry, lease_until)
  else
    redis.call('ZREM', KEYS[c + 1], entry)
    redis.call('HDEL', KEYS[4], entry)
  end
end
local paused = tonumber(redis.call('GET', KEYS[5]) or '0')
if paused > now then
  return {0, paused - now}
end
local wait = 0
for i = 7, #KEYS do
  local span = tonumber(ARGV[7 + (i - 7) * 2])
  local limit = tonumber(ARGV[8 + (i - 7) * 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - span)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local free = tonumber(oldest[2]) + span - now
    if free > wait then wait = free end
  end
end
if wait > 0 then
  return {0, wait}
end
local function head(c)
  while true do
    local first = redis.call('ZRANGE', KEYS[c + 1], 0, 0)
    if #first == 0 then return nil end
    if tonumber(redis.call('HGET', KEYS[4], first[1]) or '0') >= now then return first[1] end
    redis.call('ZREM', KEYS[c + 1], first[1])
    redis.call('HDEL', KEYS[4], first[1])
  end
end
local turn, class = nil, nil
if tonumber(redis.call('HGET', state, 'since_inquiry') or '0') >= tonumber(ARGV[4]) then
  turn, class = head(2), 2
end
if not turn then
  for c = 0, 2 do
    turn, class = head(c), c
    if turn then break end
  end
end
if turn ~= member .. '/' .. class then
  return {0, -1}
end
local id = redis.call('HINCRBY', state, 'seq', 1)
local ttl = tonumber(ARGV[6])
for i = 7, #KEYS do
  redis.call('ZADD', KEYS[i], now, id)
  redis.call('PEXPIRE', KEYS[i], ttl)
end
if class == 2 then
  redis.call('HSET', state, 'since_inquiry', 0)
else
  redis.call('HINCRBY', state, 'since_inquiry', 1)
end
redis.call('HSET', state, 'limits', ARGV[5])
if waiting[class + 1] > 1 then
  -- more of this class wait here: to the back of the class, keeping the place in the queue
  redis.call('ZADD', KEYS[class + 1], 'XX', now, turn)
else
  redis.call('ZREM', KEYS[class + 1], turn)
  redis.call('HDEL', KEYS[4], turn)
end
for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ttl) end
redis.call('PEXPIRE', state, ttl)
return {1, class, id, now}
"""

# KEYS: log... ; ARGV: permit id, then each log's span (us). The request leaves now: its permit
# is logged at this time. Returns 0, changing nothing, if the permit already left a window (the
# request resumed too late): slots it no longer held may have gone to others, so it needs a new one.
RESTAMP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local stamp = redis.call('ZSCORE', KEYS[i], ARGV[1])
  if not stamp or tonumber(stamp) + tonumber(ARGV[i + 1]) <= now then
    return 0
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', 'GT', now, ARGV[1])
end
return 1
"""

# KEYS: pause state ; ARGV: pause (us). Every process's next grant waits until then.
PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
if now + pause > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], now + pause, 'PX', math.floor(pause / 1000) + 1000)
  redis.call('HINCRBY', KEYS[2], 'pauses', 1)
  return 1
end
return 0
"""
