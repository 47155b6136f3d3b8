use dogpile::dogpile;

#[dogpile(ttl = "60s", none_ttl = "30s")]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = lookup(1);
}
