use dogpile::dogpile;

#[dogpile(ttl = "60s")]
fn first_word(text: &str) -> &str {
    text.split(' ').next().unwrap_or("")
}

fn main() {
    let _ = first_word("a b");
}
