//! `&self` methods: a per-instance cache in a field (`field = cache`), or one cache
//! shared by every instance when `key` names what identifies the result.
use dogpile::{dogpile, Cache};
use std::sync::Arc;
use std::time::Duration;

struct Pool;

struct Users {
    db: Pool,
    cache: Cache<u64, Arc<String>>,
    pages: Cache<(String, u32), String>,
}

impl Users {
    fn new() -> Self {
        Users {
            db: Pool,
            // ttl and the other settings are given where the field's cache is built.
            cache: Cache::builder()
                .ttl(Duration::from_secs(60))
                .capacity(100)
                .build(),
            pages: Cache::new(Duration::from_secs(60)),
        }
    }

    #[dogpile(field = cache)]
    fn name(&self, id: u64) -> Arc<String> {
        let _ = &self.db;
        Arc::new(format!("user {id}"))
    }

    #[dogpile(field = pages)]
    pub async fn page(&self, path: &str, n: u32) -> String {
        format!("{path}/{n}")
    }

    /// Shared by every instance: `self` is not part of the key.
    #[dogpile(ttl = "1m", key = id)]
    fn shared(&self, id: u64) -> u64 {
        let _ = &self.db;
        id
    }

    #[dogpile(ttl = "1m", key(u64) = self.seed() + id, skip_none)]
    fn computed(&self, id: u64) -> Option<u64> {
        Some(id)
    }

    fn seed(&self) -> u64 {
        1
    }
}

#[test]
fn runs() {
    let users = Users::new();
    assert_eq!(*users.name(1), "user 1");
    assert_eq!(users.cache.len(), 1);
    assert_eq!(users.shared(2), 2);
    assert_eq!(Users::shared_cache().len(), 1);
    assert_eq!(users.computed(3), Some(3));
    assert!(Users::computed_cache().remove(&4).is_some());
    let _ = users.page("/a", 1);
}
