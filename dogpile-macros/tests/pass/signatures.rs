#![deny(warnings)]
//! Shapes of fns the attribute accepts: no arguments, no return value, `mut` and `_`
//! arguments, lifetimes on top-level borrows, `'static` borrows, nested fns, docs and
//! attributes, visibility.
use dogpile::dogpile;

/// Memoizes one value.
#[dogpile(ttl = "60s")]
#[must_use]
pub fn config() -> Vec<u8> {
    vec![1, 2, 3]
}

// `()`: the body runs at most once per key per ttl (a throttle).
#[dogpile(ttl = "60s")]
fn ping(host: &str) {
    let _ = host;
}

// `mut` arguments stay mutable in the body; `_` arguments are not part of the key.
#[dogpile(ttl = "60s")]
fn count(mut n: u32, _: &std::cell::Cell<u8>) -> u32 {
    n += 1;
    n
}

#[dogpile(ttl = "60s")]
fn lengths<'a>(a: &'a str, b: &'static str, c: Option<&'static str>) -> (usize, &'static str) {
    (a.len() + b.len() + c.map_or(0, str::len), b)
}

pub(crate) mod inner {
    #[dogpile::dogpile(ttl = "60s")]
    pub(crate) fn doubled(x: i64) -> i64 {
        x * 2
    }
}

fn outer(x: u8) -> u8 {
    #[dogpile(ttl = "60s")]
    fn nested(x: u8) -> u8 {
        x + 1
    }
    nested(x)
}

#[test]
fn runs() {
    assert_eq!(config(), [1, 2, 3]);
    ping("example.com");
    let cell = std::cell::Cell::new(0);
    assert_eq!(count(1, &cell), 2);
    assert_eq!(count(1, &std::cell::Cell::new(9)), 2);
    assert_eq!(lengths("ab", "c", None), (3, "c"));
    assert_eq!(inner::doubled(4), 8);
    assert_eq!(inner::DOUBLED.len(), 1);
    assert_eq!(outer(1), 2);
}
