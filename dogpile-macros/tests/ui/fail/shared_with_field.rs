// With `field = ..` the cache is built by the user, so the tier goes where it is built:
// `Cache::builder().shared(..)`.
use dogpile::{dogpile, Cache};

struct Users {
    names: Cache<u64, String>,
}

impl Users {
    #[dogpile(field = names, shared = TIER.clone())]
    fn name(&self, id: u64) -> String {
        format!("user {id}")
    }
}

fn main() {}
