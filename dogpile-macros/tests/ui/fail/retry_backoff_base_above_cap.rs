use dogpile::dogpile;

#[dogpile(ttl = "60s", retry_backoff = "30s..1s")]
fn lookup(id: u32) -> Result<String, String> {
    Ok(format!("user {id}"))
}

fn main() {
    let _ = lookup(1);
}
