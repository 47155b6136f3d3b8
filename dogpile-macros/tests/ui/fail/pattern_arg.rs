use dogpile::dogpile;

#[dogpile(ttl = "60s")]
fn area((w, h): (u32, u32)) -> u32 {
    w * h
}

fn main() {
    let _ = area((2, 3));
}
