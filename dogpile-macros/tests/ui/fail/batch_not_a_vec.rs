use dogpile::dogpile;
use std::collections::HashMap;

#[dogpile(ttl = "1m", batch = ids)]
fn users(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|&id| (id, format!("user {id}"))).collect()
}

#[dogpile(ttl = "1m", batch = ids)]
fn scores(ids: &[u64]) -> Result<Option<u64>, String> {
    Ok(ids.first().copied())
}

#[dogpile(ttl = "1m", batch = ids)]
fn touch(ids: &[u64]) {
    let _ = ids;
}

fn main() {
    users(&[1]);
    let _ = scores(&[1]);
    touch(&[1]);
}
