use dogpile::dogpile;

#[dogpile(ttl = "60s", capacty = 10)]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = lookup(1);
}
