use dogpile::dogpile;

// Every problem is reported at once, each at its own token.
#[dogpile(ttl = "1 fortnight", colour, capacity = -1)]
fn lookup<T: Clone>(id: T, out: &mut String) -> impl Clone {
    out.push('x');
    id
}

fn main() {
    let _ = lookup(1, &mut String::new());
}
