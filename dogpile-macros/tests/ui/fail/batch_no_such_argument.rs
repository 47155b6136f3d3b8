use dogpile::dogpile;

struct Pool;

#[dogpile(ttl = "1m", batch = user_ids)]
fn users(db: &Pool, ids: &[u64]) -> Vec<String> {
    let _ = db;
    ids.iter().map(|id| format!("user {id}")).collect()
}

#[dogpile(ttl = "1m", batch = "ids")]
fn scores(ids: &[u64]) -> Vec<u64> {
    ids.to_vec()
}

fn main() {
    users(&Pool, &[1]);
    scores(&[1]);
}
