use dogpile::dogpile;

#[dogpile(ttl = "60s")]
fn fill(buf: &mut Vec<u8>) -> usize {
    buf.push(1);
    buf.len()
}

fn main() {
    let _ = fill(&mut Vec::new());
}
