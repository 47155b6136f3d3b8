use dogpile::dogpile;

struct Pool;

#[dogpile(ttl = "1m", batch = ids, key = db)]
fn with_key(db: &Pool, ids: &[u64]) -> Vec<u64> {
    let _ = db;
    ids.to_vec()
}

#[dogpile(ttl = "1m", batch = ids, sync_readers)]
fn with_sync_readers(ids: &[u64]) -> Vec<u64> {
    ids.to_vec()
}

#[dogpile(ttl = "1m", batch = ids, background)]
fn with_background(ids: &[u64]) -> Vec<u64> {
    ids.to_vec()
}

#[dogpile(ttl = "1m", batch = ids, skip_none)]
fn with_skip_none(ids: &[u64]) -> Vec<Option<u64>> {
    ids.iter().map(|&id| Some(id)).collect()
}

struct Repo;

impl Repo {
    #[dogpile(batch = ids, field = cache)]
    fn with_field(&self, ids: &[u64]) -> Vec<u64> {
        ids.to_vec()
    }
}

fn main() {
    with_key(&Pool, &[1]);
    with_sync_readers(&[1]);
    with_background(&[1]);
    with_skip_none(&[1]);
    Repo.with_field(&[1]);
}
