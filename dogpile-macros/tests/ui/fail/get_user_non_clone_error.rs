// One mistake: an error type that is not `Clone`. The pool is out of the key
// (`key = id`), so it needs no bounds. One error, with its note about `Arc`.
use dogpile::dogpile;
use std::sync::Arc;

struct Db {
    url: String,
}

#[derive(Clone)]
struct User {
    name: Arc<str>,
}

#[derive(Debug)]
struct DbError;

#[dogpile(ttl = "60s", key = id)]
async fn get_user(db: &Db, id: u64) -> Result<User, DbError> {
    Ok(User { name: format!("{}/{id}", db.url).into() })
}

fn main() {
    let db = Db { url: "postgres://".into() };
    let _ = get_user(&db, 1);
}
