use dogpile::dogpile;

#[dogpile(ttl = "1m", batch = ids)]
fn users(ids: Vec<u64>) -> Vec<String> {
    ids.iter().map(|id| format!("user {id}")).collect()
}

#[dogpile(ttl = "1m", batch = ids)]
fn scores(ids: &Vec<u64>) -> Vec<u64> {
    ids.clone()
}

fn main() {
    users(vec![1]);
    scores(&vec![1]);
}
