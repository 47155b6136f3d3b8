use dogpile::dogpile;

#[derive(Clone)]
struct Config;

impl Config {
    // No receiver, but the `static` cache can't live in an `impl` block.
    #[dogpile(ttl = "60s")]
    fn load(path: &str) -> Self {
        let _ = path;
        Config
    }
}

fn main() {
    let _ = Config::load("a.toml");
}
