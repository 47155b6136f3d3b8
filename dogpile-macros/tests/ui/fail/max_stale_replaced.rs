use dogpile::dogpile;

#[dogpile(ttl = "60s", max_stale = "5m")]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = lookup(1);
}
