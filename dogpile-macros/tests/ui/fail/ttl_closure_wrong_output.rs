use dogpile::dogpile;

#[derive(Clone)]
struct Token {
    valid_secs: u64,
}

// A lifetime is a `Duration`, not a number of seconds.
#[dogpile(ttl = |t: &Token| t.valid_secs)]
fn token(user: u32) -> Token {
    Token { valid_secs: u64::from(user) }
}

fn main() {
    let _ = token(1).valid_secs;
}
