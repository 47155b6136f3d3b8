// A `RedisTier` shares keys and values through serde: a key type without `Serialize`
// can't be shared, and the error says what to derive.
use dogpile::dogpile;
use dogpile_redis::RedisTier;

#[derive(Clone, Hash, PartialEq, Eq)]
struct UserId(u64);

#[dogpile(ttl = "10s", shared = RedisTier::open("redis://127.0.0.1/").unwrap())]
fn name(id: UserId) -> String {
    format!("user {}", id.0)
}

fn main() {
    assert_eq!(name(UserId(1)), "user 1");
}
