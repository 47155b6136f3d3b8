use dogpile::{dogpile, Cache};

struct Users {
    cache: Cache<String, String>,
}

impl Users {
    #[dogpile(field = cache)]
    fn lookup(&self, id: u32) -> String {
        format!("user {id}")
    }
}

fn main() {
    let users = Users { cache: Cache::new(std::time::Duration::from_secs(1)) };
    let _ = users.lookup(1);
}
