use dogpile::dogpile;

struct Config;

impl Config {
    #[dogpile(ttl = "60s", key = path, associated)]
    fn load(&self, path: &str) -> String {
        path.to_owned()
    }
}

fn main() {
    let _ = Config.load("a.toml");
}
