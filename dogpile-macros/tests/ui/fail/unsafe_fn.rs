use dogpile::dogpile;

#[dogpile(ttl = "60s")]
unsafe fn read(addr: usize) -> u8 {
    addr as u8
}

fn main() {
    let _ = unsafe { read(3) };
}
