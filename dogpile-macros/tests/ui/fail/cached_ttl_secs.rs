use dogpile::dogpile;

// `cached`'s spelling.
#[dogpile(ttl_secs = 60)]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = lookup(1);
}
