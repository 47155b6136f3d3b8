use dogpile::{dogpile, Cache};

struct Users {
    cache: Cache<u32, String>,
}

impl Users {
    #[dogpile(field = cache, ttl = "60s", background)]
    fn lookup(&self, id: u32) -> String {
        format!("user {id}")
    }
}

#[dogpile(field = cache)]
fn free(id: u32) -> u32 {
    id
}

fn main() {
    let users = Users { cache: Cache::new(std::time::Duration::from_secs(1)) };
    let _ = users.lookup(1);
    let _ = free(1);
}
