use dogpile::dogpile;

#[dogpile(ttl = "60s", capacity = "1000")]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = lookup(1);
}
