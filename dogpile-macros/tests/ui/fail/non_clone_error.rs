use dogpile::dogpile;

// Callers that waited for a failed first creation each get a clone of its error, so the
// error type must be `Clone`: `std::io::Error` is not.
#[dogpile(ttl = "60s")]
fn load(path: &str) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path)
}

fn main() {
    let _ = load("/etc/hostname");
}
