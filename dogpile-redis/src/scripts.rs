//! The Redis side of a shared slot, as Lua scripts. Each touches only the two keys of
//! one slot (a batch's scripts, those of several slots on one node),
//! `dogpile:{ns:fingerprint}:v` (a hash: value `v`, creation time `t` in
//! Redis milliseconds, the value's lifetime `d` in milliseconds, generation `g`, the
//! scope's epochs `s` and `h` its claim was granted under, failed attempts in a row `f`)
//! and `dogpile:{ns:fingerprint}:l` (the lease: owner token, or a back-off marker,
//! expiring by Redis's clock). Both share one hash tag, so every script runs on one Redis Cluster
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
-- value (or false), age in ms (-1 when there is none), generation, why the value is
-- left out (0 it is not, 1 oversized, 2 stored without a lifetime by an older build),
-- the value's soft and hard epochs, whether it is of an older soft epoch than `soft`,
-- its lifetime in ms. A value of an older hard epoch than `hard` is absent (cleared,
-- R1); so is one without a lifetime.
local function current(vk, now, limit, soft, hard)
  local f = redis.call('HMGET', vk, 't', 'g', 's', 'h', 'd')
  local g = tonumber(f[2]) or 0
  local t = tonumber(f[1])
  local es = tonumber(f[3]) or 0
  local eh = tonumber(f[4]) or 0
  if not t or eh < tonumber(hard) then return false, -1, g, 0, es, eh, false, 0 end
  local d = tonumber(f[5])
  if not d or d < 0 then return false, -1, g, 2, es, eh, false, 0 end
  -- Integers in a reply stay exact up to 2^53 ms (285 000 years).
  d = math.min(math.floor(d), 9007199254740992)
  local old = es < tonumber(soft)
  local age = now - t
  -- R1: created in the future by more than a second (another server's clock, a
  -- failover): its age is unknown, so it counts as older than any lifetime.
  if age < -1000 then age = 1e15 elseif age < 0 then age = 0 end
  if redis.call('HSTRLEN', vk, 'v') > limit then return false, age, g, 1, es, eh, old, d end
  return redis.call('HGET', vk, 'v'), age, g, 0, es, eh, old, d
end
-- Failed attempts in a row since the last publish.
local function failures(vk)
  return tonumber(redis.call('HGET', vk, 'f')) or 0
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
local function claim(vk, lk, now, limit, ahead, token, lease, force, soft, hard)
  local v, age, g, over, es, eh, old, d = current(vk, now, tonumber(limit), soft, hard)
  if old and age < d then age = d end
  if age >= 0 and age + tonumber(ahead) < d and force ~= '1' then
    return {'fresh', v, age, g, 0, over, es, eh, d, 0}
  end
  local left = redis.call('PTTL', lk)
  if left == -1 then
    -- R2: a lease without expiry (never set by this crate) runs out after one lease.
    redis.call('PEXPIRE', lk, lease)
    left = tonumber(lease)
  end
  if left > 0 then
    return {'busy', v, age, g, left, over, es, eh, d, 0}
  end
  redis.call('SET', lk, token, 'PX', lease)
  return {'owned', v, age, g, tonumber(lease), over, es, eh, d, failures(vk)}
end
-- The publish of one slot; see PUBLISH.
local function publish(vk, lk, now, token, gen, value, retention, channel, fp, soft, hard,
    lifetime)
  if redis.call('GET', lk) ~= token then return 0 end
  local g = tonumber(redis.call('HGET', vk, 'g')) or 0
  if g ~= tonumber(gen) then
    redis.call('DEL', lk)
    redis.call('PUBLISH', channel, 'l' .. fp)
    return 0
  end
  redis.call('HSET', vk, 'v', value, 't', now, 'g', g, 's', soft, 'h', hard, 'd', lifetime,
    'f', 0)
  keep(vk, retention)
  redis.call('DEL', lk)
  redis.call('PUBLISH', channel, 'p' .. fp)
  return 1
end
-- The renewal of one slot's lease (F5): 1 renewed, 0 no longer the token's.
local function renew(lk, token, lease)
  if redis.call('GET', lk) ~= token then return 0 end
  redis.call('PEXPIRE', lk, lease)
  return 1
end
-- The release of one slot's lease; see RELEASE.
local function release(vk, lk, token, channel, fp, hold, retention)
  if redis.call('GET', lk) ~= token then return 0 end
  if tonumber(hold) > 0 then
    redis.call('SET', lk, 'back-off', 'PX', hold)
    redis.call('HINCRBY', vk, 'f', 1)
    keep(vk, retention)
  else
    redis.call('DEL', lk)
  end
  redis.call('PUBLISH', channel, 'l' .. fp)
  return 1
end
"#;

/// KEYS: value, lease. ARGV: size limit, known soft epoch, known hard epoch.
/// Reply: {"value", value|nil, age, generation, lease pttl, left out, value's soft
/// epoch, value's hard epoch, lifetime, failures}.
const LOOKUP: &str = r#"
local v, age, g, over, es, eh, old, d = current(KEYS[1], now_ms(), tonumber(ARGV[1]), ARGV[2],
  ARGV[3])
return {'value', v, age, g, redis.call('PTTL', KEYS[2]), over, es, eh, d, failures(KEYS[1])}
"#;

/// KEYS: value, lease. ARGV: size limit, refresh ahead ms, token, lease ms, force, known
/// soft epoch, known hard epoch.
/// The freshness re-check and the claim are one atomic step (R4, F1): a value is fresh
/// with more than `refresh ahead` of its own lifetime left, so an early refresh is
/// claimed once per lifetime, fleet-wide. With `force`, a fresh value counts as absent
/// (it could not be decoded by this caller). A value of an older soft epoch is stale,
/// aged at least its lifetime (R7, R3); of an older hard epoch, absent (R1).
/// Reply: {"fresh"|"busy"|"owned", value|nil, age, generation, lease ms left, left out,
/// value's soft epoch, value's hard epoch, lifetime, failures}.
const CLAIM: &str = r#"
return claim(KEYS[1], KEYS[2], now_ms(), ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
  ARGV[7])
"#;

/// KEYS: value, lease. ARGV: token, generation, value, retention ms, channel, fingerprint,
/// soft and hard epochs of the claim, lifetime ms. The value is stored with its lifetime
/// (R6) and the epochs its claim was
/// granted under: one created across an `invalidate_all` or `clear` counts as
/// invalidated or cleared (F5). Stores only under the caller's own live lease at an
/// unchanged generation (F5). A
/// publish fenced by the generation still ends the caller's lease and tells waiters
/// (F8), so that nobody waits it out. Reply: 1 stored, 0 rejected.
const PUBLISH: &str = r#"
return publish(KEYS[1], KEYS[2], now_ms(), ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
  ARGV[7], ARGV[8], ARGV[9])
"#;

/// KEYS: value, lease. ARGV: token, channel, fingerprint, hold ms, retention ms. Ends
/// the lease: at once (F8), or, with a hold, by turning it into a back-off marker that
/// nobody owns and that runs out after `hold`, so that no process claims the key before
/// then; a hold also counts one more failure in a row. Tells waiters elsewhere either
/// way. Reply: 1 released, 0 was not held.
const RELEASE: &str = r#"
return release(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"#;

/// KEYS: value, lease. ARGV: retention ms, channel, fingerprint.
/// Soft (R7): a fresh value is aged to exactly its own lifetime; the generation moves,
/// so a creation in flight is fenced (F5), and a back-off ends; every process is told
/// (F6). Foreign data in the slot's keys is cleared first.
const INVALIDATE: &str = r#"
repair(KEYS[1], KEYS[2])
local now = now_ms()
local f = redis.call('HMGET', KEYS[1], 't', 'd')
local t, d = tonumber(f[1]), tonumber(f[2])
if t and d and now - t < d then
  redis.call('HSET', KEYS[1], 't', now - d)
end
redis.call('HINCRBY', KEYS[1], 'g', 1)
keep(KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], 'i' .. ARGV[3])
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

/// A batch's scripts declare one key, the first slot's value key, which routes them to
/// its node: a Redis Cluster refuses a script that declares keys of several hash slots,
/// while one whose keys are all on its node may reach them as arguments (the cluster
/// variant says `allow-cross-slot-keys`).
///
/// KEYS: the first slot's value key. ARGV: size limit, refresh ahead ms, lease ms,
/// known soft epoch, known hard epoch, then for each slot its value key, lease key and
/// token. CLAIM for each slot, at one time by Redis's clock. Reply: one CLAIM reply per
/// slot.
const CLAIM_MANY: &str = r#"
local now, out = now_ms(), {}
for i = 1, (#ARGV - 5) / 3 do
  local a = 5 + 3 * (i - 1)
  out[i] = claim(ARGV[a + 1], ARGV[a + 2], now, ARGV[1], ARGV[2], ARGV[a + 3], ARGV[3], '0',
    ARGV[4], ARGV[5])
end
return out
"#;

/// KEYS: the first slot's value key. ARGV: retention ms, channel, then for each slot its
/// value key, lease key, token, generation, value, fingerprint, the soft and hard
/// epochs of its claim, and its lifetime ms. PUBLISH for each slot. Reply: one PUBLISH
/// reply per slot.
const PUBLISH_MANY: &str = r#"
local now, out = now_ms(), {}
for i = 1, (#ARGV - 2) / 9 do
  local a = 2 + 9 * (i - 1)
  out[i] = publish(ARGV[a + 1], ARGV[a + 2], now, ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
    ARGV[1], ARGV[2], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9])
end
return out
"#;

/// KEYS: the first slot's value key. ARGV: channel, retention ms, then for each slot its
/// value key, lease key, token, fingerprint and hold ms. RELEASE for each slot. Reply:
/// one RELEASE reply per slot.
const RELEASE_MANY: &str = r#"
local out = {}
for i = 1, (#ARGV - 2) / 5 do
  local a = 2 + 5 * (i - 1)
  out[i] = release(ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[1], ARGV[a + 4], ARGV[a + 5],
    ARGV[2])
end
return out
"#;

/// KEYS: the first slot's value key. ARGV: lease ms, then for each slot its value key,
/// lease key and token. Renews each slot's lease if it is still the token's (F5), the
/// leases of one process due together. Reply: per slot, 1 renewed, 0 lost.
const RENEW_MANY: &str = r#"
local out = {}
for i = 1, (#ARGV - 1) / 3 do
  local a = 1 + 3 * (i - 1)
  out[i] = renew(ARGV[a + 2], ARGV[a + 3], ARGV[1])
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
pub(crate) static RELEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(RELEASE));
pub(crate) static INVALIDATE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(INVALIDATE));
pub(crate) static REMOVE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| script(REMOVE));
pub(crate) static CLAIM_MANY_SCRIPT: LazyLock<Many> = LazyLock::new(|| many(CLAIM_MANY));
pub(crate) static PUBLISH_MANY_SCRIPT: LazyLock<Many> = LazyLock::new(|| many(PUBLISH_MANY));
pub(crate) static RENEW_MANY_SCRIPT: LazyLock<Many> = LazyLock::new(|| many(RENEW_MANY));
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
    /// A value stored without its lifetime (by an older build): left out, a miss.
    pub(crate) without_lifetime: bool,
    /// The epochs the value was stored under (0 when there is none).
    pub(crate) epoch: Epoch,
    /// The value's lifetime (R6), in milliseconds.
    pub(crate) lifetime_ms: u64,
    /// Failed attempts in a row since the last publish (given to an owner only).
    pub(crate) failures: u32,
}

impl redis::FromRedisValue for SlotReply {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        type Reply = (
            String,
            Option<Vec<u8>>,
            i64,
            u64,
            i64,
            i64,
            u64,
            u64,
            u64,
            u64,
        );
        let (kind, value, age_ms, generation, lease_left_ms, left_out, soft, hard, d, f): Reply =
            redis::FromRedisValue::from_redis_value(v)?;
        Ok(SlotReply {
            kind,
            value,
            age_ms,
            generation,
            lease_left_ms,
            oversized: left_out == 1,
            without_lifetime: left_out == 2,
            epoch: Epoch { soft, hard },
            lifetime_ms: d,
            failures: u32::try_from(f).unwrap_or(u32::MAX),
        })
    }
}
