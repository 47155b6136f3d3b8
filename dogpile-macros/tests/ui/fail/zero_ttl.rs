use dogpile::dogpile;

#[dogpile(ttl = "0s")]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = lookup(1);
}
