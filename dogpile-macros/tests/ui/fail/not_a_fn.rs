use dogpile::dogpile;

#[dogpile(ttl = "60s")]
struct Users;

fn main() {
    let _ = Users;
}
