use dogpile::dogpile;

struct Config;

impl Config {
    // Neither `associated` nor `Self`: taken for a free fn, whose `static` an `impl`
    // block can't hold. The fix is `#[dogpile(ttl = "60s", associated)]`.
    #[dogpile(ttl = "60s")]
    fn load(path: &str) -> String {
        path.to_owned()
    }
}

fn main() {
    let _ = Config::load("a.toml");
}
