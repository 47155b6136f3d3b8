#![deny(dead_code)]
use dogpile::dogpile;

// Never called: reported like an unused plain fn, not hidden by the generated items.
#[dogpile(ttl = "60s")]
fn unused(id: u32) -> String {
    format!("row {id}")
}

#[dogpile(ttl = "60s", key = id)]
fn used(db: &str, id: u32) -> String {
    format!("{db} {id}")
}

struct Users;

impl Users {
    #[dogpile(ttl = "60s", key = id)]
    fn unused_method(&self, id: u32) -> u32 {
        id
    }
}

fn main() {
    let _ = used("db", 1);
    let _ = Users;
}
