#![deny(warnings)]
// `shared = EXPR` on every kind of memoized fn: the expression gives a fleet tier and is
// evaluated once, when the fn's cache is first used. No server is listening on port 1:
// each call falls back to the local rules (F7), so this runs without Redis.
use dogpile::dogpile;
use dogpile_redis::RedisTier;
use std::sync::LazyLock;

static TIER: LazyLock<RedisTier> =
    LazyLock::new(|| RedisTier::open("redis://127.0.0.1:1/").unwrap().namespace("pass"));

#[dogpile(ttl = "60s", shared = TIER.clone())]
fn page(path: &str, lang: u8) -> String {
    format!("{path}:{lang}")
}

#[dogpile(ttl = "60s", shared = TIER.clone())]
fn fallible(id: u64) -> Result<u64, String> {
    Ok(id + 1)
}

#[dogpile(ttl = "60s", background, shared = TIER.clone())]
fn refreshed(id: u64) -> u64 {
    id * 2
}

#[dogpile(ttl = "60s", sync_readers, shared = TIER.clone())]
fn guarded(id: u64) -> Vec<u64> {
    vec![id]
}

#[dogpile(ttl = "60s", shared = TIER.clone())]
async fn fetched(url: &str) -> String {
    url.to_uppercase()
}

#[dogpile(ttl = "60s", background, shared = TIER.clone())]
async fn fetched_in_background(id: u64) -> Result<u64, String> {
    Ok(id)
}

struct Users;

impl Users {
    #[dogpile(ttl = "60s", key = id, shared = TIER.clone())]
    fn name(&self, id: u64) -> String {
        format!("user {id}")
    }
}

fn main() {
    assert_eq!(page("/", 1), "/:1");
    assert_eq!(fallible(1), Ok(2));
    assert_eq!(refreshed(2), 4);
    assert_eq!(*guarded(3), vec![3]);
    assert_eq!(Users.name(4), "user 4");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(fetched("a")), "A");
    assert_eq!(runtime.block_on(fetched_in_background(5)), Ok(5));
}
