//! `RedisTier::scoped` (the `SharedTier::scoped` the `#[dogpile(shared = ..)]` attribute
//! calls with each fn's path): where a scope's keys live in Redis.

use std::time::Duration;

use dogpile::Cache;
use dogpile_redis::RedisTier;
use support::redis::RedisServer;

const TTL: Duration = Duration::from_secs(60);

fn scoped_cache(server: &RedisServer, scope: &str) -> Cache<u64, u64> {
    let tier = RedisTier::open(&server.url())
        .unwrap()
        .namespace("shop")
        .scoped(scope);
    Cache::builder().ttl(TTL).shared(tier).build()
}

/// The Redis Cluster hash tag of `key`: what is between its first `{` and the next `}`.
fn hash_tag(key: &str) -> &str {
    let open = key.find('{').expect("a hash tag");
    let close = open + key[open..].find('}').expect("a closed hash tag");
    &key[open + 1..close]
}

fn each_scope_has_its_own_keys_inside_one_hash_tag_per_slot() {
    let server = RedisServer::start();
    let (price, stock) = (
        scoped_cache(&server, "app::price"),
        scoped_cache(&server, "app::stock"),
    );
    assert_eq!(price.get_with(1, || 100), 100);
    assert_eq!(stock.get_with(1, || 2), 2, "the same key, its own value");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("dogpile:*")
        .query(&mut server.client())
        .unwrap();
    keys.sort();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let tags: Vec<&str> = keys.iter().map(|k| hash_tag(k)).collect();
    // The whole namespace, the user's then the scope, is in each slot's hash tag, so a
    // slot's value and lease keys always share a Cluster node.
    assert!(tags[0].starts_with("shop:app::price:"), "{keys:?}");
    assert!(tags[1].starts_with("shop:app::stock:"), "{keys:?}");
    assert!(keys.iter().all(|k| k.ends_with(":v")), "{keys:?}");
}

fn a_brace_in_a_namespace_or_scope_is_refused() {
    // It would end the hash tag early: a slot's keys could land on two Cluster nodes.
    let tier = || RedisTier::open("redis://127.0.0.1:1/").unwrap();
    for bad in ["a{b", "a}b"] {
        let namespace = std::panic::catch_unwind(|| tier().namespace(bad));
        let scope = std::panic::catch_unwind(|| tier().scoped(bad));
        for outcome in [namespace.err(), scope.err()] {
            let message = outcome.expect("refused");
            let message = message
                .downcast_ref::<String>()
                .expect("a formatted message");
            assert!(message.contains("hash tag"), "{message}");
        }
    }
}

support::redis_tests! {
    needs_redis: [
        each_scope_has_its_own_keys_inside_one_hash_tag_per_slot,
    ],
    plain: [
        a_brace_in_a_namespace_or_scope_is_refused,
    ],
}
