use dogpile::dogpile;

#[dogpile(capacity = 100)]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    // The fn is still emitted unchanged, so this call adds no second error.
    let _ = lookup(1);
}
