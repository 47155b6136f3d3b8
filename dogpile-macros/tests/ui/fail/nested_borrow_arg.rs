use dogpile::dogpile;

#[dogpile(ttl = "60s")]
fn greet(name: Option<&str>) -> String {
    format!("hello {}", name.unwrap_or("you"))
}

fn main() {
    let _ = greet(None);
}
