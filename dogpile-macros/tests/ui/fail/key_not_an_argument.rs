use dogpile::dogpile;

struct Pool;

#[dogpile(ttl = "1m", key = user_id)]
fn user(db: &Pool, id: u64) -> String {
    let _ = db;
    format!("user {id}")
}

fn main() {
    user(&Pool, 1);
}
