use dogpile::dogpile;

#[dogpile(ttl = "60s")]
extern "C" fn square(n: u64) -> u64 {
    n * n
}

fn main() {
    let _ = square(3);
}
