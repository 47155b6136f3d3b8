use dogpile::dogpile;

struct Users;

impl Users {
    #[dogpile(ttl = "60s")]
    fn lookup(&self, id: u32) -> String {
        format!("user {id}")
    }
}

fn main() {
    let _ = Users.lookup(1);
}
