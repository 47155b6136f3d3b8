#![deny(warnings)]
use dogpile::dogpile;

#[dogpile(ttl = "60s", capacity = 1_000)]
fn square(n: u64) -> u64 {
    n * n
}

#[test]
fn runs() {
    for n in 0..5000 {
        assert_eq!(square(n), n * n);
    }
    assert!(SQUARE.len() <= 1_000, "{}", SQUARE.len());
}
