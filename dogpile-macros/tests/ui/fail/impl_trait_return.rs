use dogpile::dogpile;

#[dogpile(ttl = "60s")]
fn digits(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|d| d % 10)
}

fn main() {
    let _ = digits(3).count();
}
