use dogpile::dogpile;
use std::rc::Rc;

#[dogpile(ttl = "60s")]
fn names(prefix: &str) -> Rc<Vec<String>> {
    Rc::new(vec![format!("{prefix}-1")])
}

fn main() {
    let _ = names("a");
}
