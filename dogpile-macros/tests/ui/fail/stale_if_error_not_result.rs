use dogpile::dogpile;

#[dogpile(ttl = "60s", stale_if_error = "1h")]
fn lookup(id: u32) -> Option<String> {
    Some(format!("user {id}"))
}

fn main() {
    let _ = lookup(1);
}
