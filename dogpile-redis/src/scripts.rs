//! The Redis side of a shared slot, as Lua scripts. Each touches only the two keys of
//! one slot (a batch's scripts, those of several slots on one node), `dogpile:{ns:fingerprint}:v` (a hash: value `v`, creation time `t` in
//! Redis milliseconds, generation `g`, the scope's epochs `s` and `h` its claim was
//! granted under) and `dogpile:{ns:fingerprint}:l` (the lease: owner token, expiring by
//! Redis's clock). Both share one hash tag, so every script runs on one Redis Cluster
//! node. The scope's epochs themselves (`dogpile:{ns}:e`, a hash of `s` and `h`) are
//! touched only by the epoch scripts, alone: a slot's script takes the epochs the
//! caller knows as arguments, never the key.

use std::sync::LazyLock;

use crate::epoch::Epoch;

/// Shared prelude: Redis time (F4) and the slot's current value, never larger than the
/// caller's size limit (a larger one is reported, not sent).
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- value (or false), age in ms (-1 when there is none), generation, oversized flag,
-- the value's soft and hard epochs, and whether it is of an older soft epoch than
-- `soft`. A value of an older hard epoch than `hard` is absent (cleared, R1).
local function current(vk, now, limit, soft, hard)
  local f = redis.call('HMGET', vk, 't', 'g', 's', 'h')
  local g = tonumber(f[2]) or 0
  local t = tonumber(f[1])
  local es = tonumber(f[3]) or 0
  local eh = tonumber(f[4]) or 0
  if not t or eh < tonumber(hard) then return false, -1, g, 0, es, eh, false end
  local old = es < tonumber(soft)
  local age = now - t
  -- R1: created in the future by more than a second (another server's clock, a
  -- failover): its age is unknown, so it counts as older than any lifetime.
  if age < -1000 then age = 1e15 elseif age < 0 then age = 0 end
  if redis.call('HSTRLEN', vk, 'v') > limit then return false, age, g, 1, es, eh, old end
  return redis.call('HGET', vk, 'v'), age, g, 0, es, eh, old
end
local function keep(vk, retention)
  redis.call('PEXPIRE', vk, retention)
end
-- Clears what no script of this crate writes: a value key that is not a hash, a lease
-- that is not a string, a generation or creation time that is not a number.
local function repair(vk, lk)
  local kind = redis.call('TYPE', vk)['ok']
  if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', vk) end
  kind = redis.call('TYPE', lk)['ok']
  if kind ~= 'string' and kind ~= 'none' then redis.call('DEL', lk) end
  local f = redis.call('HMGET', vk, 't', 'g')
  if f[2] and not tonumber(f[2]) then redis.call('HSET', vk, 'g', 0) end
  if f[1] and not tonumber(f[1]) then redis.call('HDEL', vk, 'v', 't') end
end
-- The claim of one slot (value key `vk`, lease key `lk`); see CLAIM.
local function claim(vk, lk, now, limit, ttl, token, lease, force, soft, hard)
  local v, age, g, over, es, eh, old = current(vk, now, tonumber(limit), soft, hard)
  if old and age < tonumber(ttl) then age = tonumber(ttl) end
  if age >= 0 and age < tonumber(ttl) and force ~= '1' then
    return {'fresh', v, age, g, 0, over, es, eh}
  end
  local left = redis.call('PTTL', lk)
  if left == -1 then
    -- R2: a lease without expiry (never set by this crate) runs out after one lease.
    redis.call('PEXPIRE', lk, lease)
    left = tonumber(lease)
  end
  if left > 0 then
    return {'busy', v, age, g, left, over, es, eh}
  end
  redis.call('SET', lk, token, 'PX', lease)
  return {'owned', v, age, g, tonumber(lease), over, es, eh}
end
-- The publish of one slot; see PUBLISH.
local function publish(vk, lk, now, token, gen, value, retention, channel, fp, soft, hard)
  if redis.call('GET', lk) ~= token then return 0 end
  local g = tonumber(redis.call('HGET', vk, 'g')) or 0
  if g ~= tonumber(gen) then
    redis.call('DEL', lk)
    redis.call('PUBLISH', channel, 'l' .. fp)
    return 0
  end
  redis.call('HSET', vk, 'v', value, 't', now, 'g', g, 's', soft, 'h', hard)
  keep(vk, retention)
  redis.call('DEL', lk)
  redis.call('PUBLISH', channel, 'p' .. fp)
  return 1
end
-- The release of one slot's lease; see RELEASE.
local function release(lk, token, channel, fp)
  if redis.call('GET', lk) ~= token then return 0 end
  redis.call('DEL', lk)
  redis.call('PUBLISH', channel, 'l' .. fp)
  return 1
end
"#;

/// KEYS: value, lease. ARGV: size limit, known soft epoch, known hard epoch.
/// Reply: {"value", value|nil, age, generation, lease pttl, oversized, value's soft
/// epoch, value's hard epoch}.
const LOOKUP: &str = r#"
local v, age, g, over, es, eh = current(KEYS[1], now_ms(), tonumber(ARGV[1]), ARGV[2], ARGV[3])
return {'value', v, age, g, redis.call('PTTL', KEYS[2]), over, es, eh}
"#;

/// KEYS: value, lease. ARGV: size limit, ttl ms, token, lease ms, force, known soft
/// epoch, known hard epoch.
/// The freshness re-check and the claim are one atomic step (R4, F1). With `force`, a
/// fresh value counts as absent (it could not be decoded by this caller). A value of
/// an older soft epoch is stale, aged at least `ttl` (R7, R3); of an older hard epoch,
/// absent (R1).
/// Reply: {"fresh"|"busy"|"owned", value|nil, age, generation, lease ms left, oversized,
/// value's soft epoch, value's hard epoch}.
const CLAIM: &str = r#"
return claim(KEYS[1], KEYS[2], now_ms(), ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
"#;

/// KEYS: value, lease. ARGV: token, generation, value, retention ms, channel, fingerprint,
/// soft and hard epochs of the claim. The value is stored with the epochs its claim was
/// granted under: one created across an `invalidate_all` or `clear` counts as
/// invalidated or cleared (F5). Stores only under the caller's own live lease at an
/// unchanged generation (F5). A
/// publish fenced by the generation still ends the caller's lease and tells waiters
/// (F8), so that nobody waits it out. Reply: 1 stored, 0 rejected.
const PUBLISH: &str = r#"
return publish(KEYS[1], KEYS[2], now_ms(), ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"#;

/// KEYS: value, lease. ARGV: token, lease ms. Reply: 1 renewed, 0 lost.
const RENEW: &str = r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"#;

/// KEYS: value, lease. ARGV: token, channel, fingerprint. Ends the lease at once (F8)
/// and tells waiters elsewhere. Reply: 1 released, 0 was not held.
const RELEASE: &str = r#"
return release(KEYS[2], ARGV[1], ARGV[2], ARGV[3])
"#;

/// KEYS: value, lease. ARGV: ttl ms, retention ms, channel, fingerprint.
/// Soft (R7): a fresh value is aged to exactly `ttl`; the generation moves, so a
/// creation in flight is fenced (F5); every process is told (F6). Foreign data in the
/// slot's keys is cleared first.
const INVALIDATE: &str = r#"
repair(KEYS[1], KEYS[2])
local now = now_ms()
local t = redis.call('HGET', KEYS[1], 't')
if t and now - tonumber(t) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 't', now - tonumber(ARGV[1]))
end
redis.call('HINCRBY', KEYS[1], 'g', 1)
keep(KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], 'i' .. ARGV[4])
return 1
"#;

/// KEYS: value, lease. ARGV: retention ms, channel, fingerprint.
/// Hard (R7): the value goes, the generation moves (F5), every process is told (F6).
/// Foreign data in the slot's keys is cleared first.
const REMOVE: &str = r#"
repair(KEYS[1], KEYS[2])
redis.call('HDEL', KEYS[1], 'v', 't')
redis.call('HINCRBY', KEYS[1], 'g', 1)
keep(KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], 'r' .. ARGV[3])
return 1
"#;

/// KEYS: value and lease of each slot of a batch, in pairs. ARGV: size limit, ttl ms,
/// lease ms, known soft epoch, known hard epoch, then one token per slot. CLAIM for each
/// slot, at one time by Redis's clock. Reply: one CLAIM reply per slot.
const CLAIM_MANY: &str = r#"
local now, out = now_ms(), {}
for i = 1, #KEYS / 2 do
  out[i] = claim(KEYS[2 * i - 1], KEYS[2 * i], now, ARGV[1], ARGV[2], ARGV[5 + i], ARGV[3],
    '0', ARGV[4], ARGV[5])
end
return out
"#;

/// KEYS: value and lease of each slot, in pairs. ARGV: retention ms, channel, then for
/// each slot its token, generation, value, fingerprint, and the soft and hard epochs of
/// its claim. PUBLISH for each slot. Reply: one PUBLISH reply per slot.
const PUBLISH_MANY: &str = r#"
local now, out = now_ms(), {}
for i = 1, #KEYS / 2 do
  local a = 2 + 6 * (i - 1)
  out[i] = publish(KEYS[2 * i - 1], KEYS[2 * i], now, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
    ARGV[1], ARGV[2], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6])
end
return out
"#;

/// KEYS: value and lease of each slot, in pairs. ARGV: channel, then for each slot its
/// token and fingerprint. RELEASE for each slot. Reply: one RELEASE reply per slot.
const RELEASE_MANY: &str = r#"
local out = {}
for i = 1, #KEYS / 2 do
  out[i] = release(KEYS[2 * i], ARGV[2 * i], ARGV[1], ARGV[2 * i + 1])
end
return out
"#;

/// KEYS: the scope's epochs. ARGV: hard ("1") or soft, channel.
/// `invalidate_all` raises the soft epoch; `clear` both (a cleared value is also an
/// invalidated one). Every process is told `e{soft}:{hard}` (F6). Foreign data in the
/// key is cleared first. Reply: {soft, hard}.
const EPOCH_RAISE: &str = r#"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local f = redis.call('HMGET', KEYS[1], 's', 'h')
if (f[1] and not tonumber(f[1])) or (f[2] and not tonumber(f[2])) then
  redis.call('DEL', KEYS[1])
end
local s = redis.call('HINCRBY', KEYS[1], 's', 1)
local h = tonumber(redis.call('HGET', KEYS[1], 'h')) or 0
if ARGV[1] == '1' then h = redis.call('HINCRBY', KEYS[1], 'h', 1) end
redis.call('PUBLISH', ARGV[2], 'e' .. s .. ':' .. h)
return {s, h}
"#;

/// KEYS: the scope's epochs. ARGV: the soft and hard epochs the caller knows.
/// Reads the epochs; a Redis that lost them (restarted empty, `FLUSHALL`) takes the
/// caller's back, so that epochs never go back for the fleet. Reply: {soft, hard}.
const EPOCH_READ: &str = r#"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local f = redis.call('HMGET', KEYS[1], 's', 'h')
local s = math.max(tonumber(f[1]) or 0, tonumber(ARGV[1]))
local h = math.max(tonumber(f[2]) or 0, tonumber(ARGV[2]))
if s > 0 or h > 0 then redis.call('HSET', KEYS[1], 's', s, 'h', h) end
return {s, h}
"#;

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{PRELUDE}{body}"))
}

/// A batch's script for a Redis Cluster: its slots are on one node but not in one hash
/// slot, which Redis 7 allows a script that says so.
fn cross_slot(body: &str) -> redis::Script {
    redis::Script::new(&format!(
        "#!lua flags=allow-cross-slot-keys\n{PRELUDE}{body}"
    ))
}

/// A batch's scripts, for one server (or a proxy) and for a Redis Cluster.
pub(crate) struct Many {
    pub(crate) server: redis::Script,
    pub(crate) cluster: redis::Script,
}

fn many(body: &str) -> Many {
    Many {
        server: script(body),
        cluster: cross_slot(body),
    }
}

pub(crate) static LOOKUP_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(LOOKUP));
pub(crate) static CLAIM_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(CLAIM));
pub(crate) static PUBLISH_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(PUBLISH));
pub(crate) static RENEW_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(RENEW));
pub(crate) static RELEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(RELEASE));
pub(crate) static INVALIDATE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(INVALIDATE));
pub(crate) static REMOVE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(REMOVE));
pub(crate) static CLAIM_MANY_SCRIPT: LazyLock<Many> = LazyLock::new(|| many(CLAIM_MANY));
pub(crate) static PUBLISH_MANY_SCRIPT: LazyLock<Many> = LazyLock::new(|| many(PUBLISH_MANY));
pub(crate) static RELEASE_MANY_SCRIPT: LazyLock<Many> = LazyLock::new(|| many(RELEASE_MANY));
pub(crate) static EPOCH_RAISE_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| script(EPOCH_RAISE));
pub(crate) static EPOCH_READ_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(EPOCH_READ));

/// The reply of LOOKUP and CLAIM.
pub(crate) struct SlotReply {
    pub(crate) kind: String,
    pub(crate) value: Option<Vec<u8>>,
    /// Milliseconds by Redis's clock; negative when there is no value.
    pub(crate) age_ms: i64,
    pub(crate) generation: u64,
    pub(crate) lease_left_ms: i64,
    pub(crate) oversized: bool,
    /// The epochs the value was stored under (0 when there is none).
    pub(crate) epoch: Epoch,
}

impl redis::FromRedisValue for SlotReply {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        let (kind, value, age_ms, generation, lease_left_ms, oversized, soft, hard): (
            String,
            Option<Vec<u8>>,
            i64,
            u64,
            i64,
            i64,
            u64,
            u64,
        ) = redis::FromRedisValue::from_redis_value(v)?;
        Ok(SlotReply {
            kind,
            value,
            age_ms,
            generation,
            lease_left_ms,
            oversized: oversized != 0,
            epoch: Epoch { soft, hard },
        })
    }
}
