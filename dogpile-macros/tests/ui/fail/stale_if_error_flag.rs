use dogpile::dogpile;

#[dogpile(ttl = "60s", stale_if_error)]
fn lookup(id: u32) -> Result<String, String> {
    Ok(format!("user {id}"))
}

fn main() {
    let _ = lookup(1);
}
