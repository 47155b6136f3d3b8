// The same two mistakes in a blocking fn: a connection pool that is part of the key but is
// neither `Hash` nor `Clone`, and an error type that is not `Clone`.
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

#[dogpile(ttl = "60s")]
fn get_user(db: &Db, id: u64) -> Result<User, DbError> {
    Ok(User { name: format!("{}/{id}", db.url).into() })
}

fn main() {
    let db = Db { url: "postgres://".into() };
    let _ = get_user(&db, 1);
}
