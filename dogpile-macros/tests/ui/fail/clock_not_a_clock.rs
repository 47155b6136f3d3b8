// `clock = ..` takes a value of a type that implements `dogpile::Clock`; a point in time
// is not one. rustc underlines the expression.
use dogpile::dogpile;

#[dogpile(ttl = "10s", clock = std::time::Instant::now())]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    assert_eq!(double(2), 4);
}
