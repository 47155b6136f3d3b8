use dogpile::dogpile;
use std::time::Duration;

#[derive(Clone)]
struct Token {
    valid_for: Duration,
}

// The closure takes the value's type, `&Token`, not the fn's argument.
#[dogpile(ttl = |user: &u32| Duration::from_secs(u64::from(*user)))]
fn token(user: u32) -> Result<Token, String> {
    Ok(Token { valid_for: Duration::from_secs(u64::from(user)) })
}

fn main() {
    let _ = token(1).map(|t| t.valid_for);
}
