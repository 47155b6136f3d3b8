use dogpile::dogpile;

struct Users;

impl Users {
    #[dogpile(ttl = "60s")]
    fn lookup(&self, id: u32) -> String {
        format!("user {id}")
    }

    #[dogpile(ttl = "60s", key = id)]
    fn rename(&mut self, id: u32) -> String {
        format!("user {id}")
    }
}

fn main() {
    let _ = Users.lookup(1);
    let _ = Users.rename(1);
}
