use dogpile::dogpile;

#[dogpile(ttl = "1m", skip_none)]
fn row(id: u64) -> Result<String, String> {
    Ok(format!("row {id}"))
}

fn main() {
    let _ = row(1);
}
