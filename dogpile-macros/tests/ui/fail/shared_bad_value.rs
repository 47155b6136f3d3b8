// `shared` takes an expression giving the tier: not a bare flag, not a URL string, not
// tokens that are no expression.
use dogpile::dogpile;

#[dogpile(ttl = "10s", shared)]
fn flag(x: u64) -> u64 {
    x
}

#[dogpile(ttl = "10s", shared = "redis://127.0.0.1/")]
fn url(x: u64) -> u64 {
    x
}

#[dogpile(ttl = "10s", shared = => tier)]
fn not_an_expression(x: u64) -> u64 {
    x
}

fn main() {
    assert_eq!(flag(1) + url(1) + not_an_expression(1), 3);
}
