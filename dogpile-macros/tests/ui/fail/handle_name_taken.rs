use dogpile::dogpile;

// The handle's default name, `LOOKUP`, is taken: rustc says so, and the wrapper's use of
// the handle says what to do.
static LOOKUP: u32 = 1;

#[dogpile(ttl = "60s")]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

struct Repo;
impl Repo {
    fn find_cache() -> u32 { 1 }

    #[dogpile(ttl = "60s", associated)]
    fn find(id: u32) -> String {
        format!("user {id}")
    }
}

fn main() {
    let _ = lookup(1);
    let _ = Repo::find(1);
    let _ = LOOKUP;
}
