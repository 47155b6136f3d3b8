// One mistake: a borrowed key part that is not `Hash`. One error, at its type.
use dogpile::dogpile;
use std::sync::Arc;

#[derive(Clone, PartialEq, Eq)]
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
async fn get_user(db: &Db, id: u64) -> Result<User, Arc<DbError>> {
    Ok(User { name: format!("{}/{id}", db.url).into() })
}

fn main() {
    let db = Db { url: "postgres://".into() };
    let _ = get_user(&db, 1);
}
