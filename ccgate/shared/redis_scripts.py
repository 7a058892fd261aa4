"""The Lua scripts behind ``RedisState``: each one shared decision in one atomic round trip."""

RPM = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + 60 - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], 61)
return false
"""

ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS: rr position, wrr scores, lc counts, pin ("" = no session)
# ARGV: strategy, prefix, pin ttl ms, then id, index, weight, priority for each candidate
PICK = """
local strategy, prefix, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local all, usable = {}, {}
for i = 4, #ARGV, 4 do
  local c = {id = ARGV[i], index = tonumber(ARGV[i + 1]), weight = tonumber(ARGV[i + 2]),
             priority = tonumber(ARGV[i + 3])}
  table.insert(all, c)
  if redis.call('EXISTS', prefix .. 'cooldown:' .. c.id) == 0 and
     redis.call('EXISTS', prefix .. 'down:' .. c.id) == 0 then
    table.insert(usable, c)
  end
end
if #usable == 0 then usable = all end
local best = nil
for _, c in ipairs(usable) do
  if best == nil or c.priority < best then best = c.priority end
end
if KEYS[4] ~= '' then
  local pinned = redis.call('GET', KEYS[4])
  for _, c in ipairs(usable) do
    if c.id == pinned then
      -- a pin on a worse tier is not renewed: the session returns once it expires
      if c.priority == best then redis.call('PEXPIRE', KEYS[4], ttl) end
      return c.id
    end
  end
end
local tier = {}
for _, c in ipairs(usable) do if c.priority == best then table.insert(tier, c) end end
local set = {}
for _, c in ipairs(tier) do if c.weight > 0 then table.insert(set, c) end end
if #set == 0 then
  set = tier
  for _, c in ipairs(set) do c.weight = 1 end
end
local function rotate(cands)
  local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
  local chosen = cands[1]
  for _, c in ipairs(cands) do
    if c.index > last then chosen = c break end
  end
  redis.call('SET', KEYS[1], chosen.index)
  return chosen
end
local chosen
if strategy == 'weighted_round_robin' then
  local total, best, best_score = 0, nil, nil
  for _, c in ipairs(set) do
    local score = redis.call('HINCRBY', KEYS[2], c.id, c.weight)
    total = total + c.weight
    if best == nil or score > best_score then best, best_score = c, score end
  end
  redis.call('HINCRBY', KEYS[2], best.id, -total)
  chosen = best
elseif strategy == 'least_connections' then
  local fewest, tied = nil, {}
  for _, c in ipairs(set) do
    c.load = tonumber(redis.call('HGET', KEYS[3], c.id) or '0')
    if fewest == nil or c.load < fewest then fewest = c.load end
  end
  local heaviest = 0
  for _, c in ipairs(set) do
    if c.load == fewest and c.weight > heaviest then heaviest = c.weight end
  end
  for _, c in ipairs(set) do
    if c.load == fewest and c.weight == heaviest then table.insert(tied, c) end
  end
  chosen = rotate(tied)
elseif strategy == 'random' then
  local total = 0
  for _, c in ipairs(set) do total = total + c.weight end
  local r = math.random() * total
  chosen = set[#set]
  for _, c in ipairs(set) do
    r = r - c.weight
    if r < 0 then chosen = c break end
  end
else
  chosen = rotate(set)
end
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], chosen.id, 'PX', ttl) end
return chosen.id
"""

# KEYS: lease expiries (zset), lease amounts (hash). ARGV: now, room, amount, lease, ttl, epoch.
# ``spend_rule.spend_refusal`` in Lua: a running request's lease holds its worst case; a finished
# one's ("f:<cost>:<epoch>") its real cost, for admissions that read the spend epoch before it;
# leases of crashed instances lapse after ``ttl``.
RESERVE = """
local now, room, amount, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[5])
local epoch = tonumber(ARGV[6])
for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('HDEL', KEYS[2], lapsed)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local running, recent = 0, 0
for _, held in ipairs(redis.call('HVALS', KEYS[2])) do
  if string.sub(held, 1, 2) == 'f:' then
    local cost, released = string.match(held, '^f:([^:]+):(%d+)$')
    if released and tonumber(released) > epoch then recent = recent + tonumber(cost) end
  else
    running = running + tonumber(held)
  end
end
local held = running + recent
if held >= room or (running > 0 and held + amount > room) then return tostring(held) end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return false
"""

# KEYS: lease expiries, lease amounts, the tenant's spend epoch. ARGV: lease, cost, lapse time.
# A new spend epoch, stamped on the released lease, which holds its real cost until it lapses.
UNRESERVE = """
local epoch = redis.call('INCR', KEYS[3])
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], 'f:' .. ARGV[2] .. ':' .. epoch)
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return epoch
"""

# The usage store's append (``usage/store_redis.py``).
# KEYS: ids, records, day totals, month totals, tenants, provisional increments of the day,
# the day's index (request id -> position of its latest record in the records list).
# ARGV: dedupe id, record JSON, tenant, request id, "1" if provisional, then its counter values,
# model, upstream and minute (below).
# ARGV: dedupe id, record JSON, tenant, request id, "1" if provisional, then field/value pairs.
# A provisional record's increments are kept; the next record of the same request takes them
# back out before adding its own, so a request is counted once however often it was recorded.
APPEND = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[7], ARGV[4], redis.call('RPUSH', KEYS[2], ARGV[2]) - 1)
redis.call('SADD', KEYS[5], ARGV[3])
local function add(field, value)
  redis.call('HINCRBYFLOAT', KEYS[3], field, value)
  -- per-minute spend ("t|<minute>") serves sliding windows: the day's hash has it, the month's not
  if string.sub(field, 1, 2) ~= 't|' then redis.call('HINCRBYFLOAT', KEYS[4], field, value) end
end
local earlier = redis.call('HGET', KEYS[6], ARGV[4])
if earlier then
  for field, value in pairs(cjson.decode(earlier)) do add(field, -value) end
end
local now = {}
local function put(field, value)
  add(field, value)
  now[field] = value
end
-- ARGV[6]: the record's counter values ({"field": "<number>"}, the non-zero ones), counted in
-- all, per model (ARGV[7]) and per upstream (ARGV[8], "" for none); ARGV[9]: the epoch minute
-- its spend counts in ("" for none). Expanded here: one short argument list per record.
for field, value in pairs(cjson.decode(ARGV[6])) do
  put(field, value)
  put('m|' .. ARGV[7] .. '|' .. field, value)
  if ARGV[8] ~= '' then put('u|' .. ARGV[8] .. '|' .. field, value) end
  if field == 'costUSD' and ARGV[9] ~= '' then put('t|' .. ARGV[9], value) end
end
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[6], ARGV[4], cjson.encode(now))
elseif earlier then
  redis.call('HDEL', KEYS[6], ARGV[4])
end
return 1
"""
