use dogpile::dogpile;

#[derive(Clone)]
struct Config;

impl Config {
    // An associated fn may name `Self`, but not as its value: the cache's `static` can't.
    #[dogpile(ttl = "60s")]
    fn load(path: &str) -> Self {
        let _ = path;
        Config
    }
}

fn main() {
    let _ = Config::load("a.toml");
}
