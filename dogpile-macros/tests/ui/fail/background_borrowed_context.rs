use dogpile::dogpile;

struct Pool;

#[dogpile(ttl = "1m", background, key = id)]
fn user(db: &Pool, id: u64) -> String {
    let _ = db;
    format!("user {id}")
}

#[dogpile(ttl = "1m", background)]
fn page(path: &str, _: &Pool) -> String {
    path.to_owned()
}

fn main() {
    user(&Pool, 1);
    page("/", &Pool);
}
