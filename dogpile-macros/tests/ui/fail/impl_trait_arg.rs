use dogpile::dogpile;

#[dogpile(ttl = "60s")]
fn shout(text: impl AsRef<str>) -> String {
    text.as_ref().to_uppercase()
}

fn main() {
    let _ = shout("hi");
}
