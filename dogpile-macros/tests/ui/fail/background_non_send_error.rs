use dogpile::dogpile;
use std::rc::Rc;

#[dogpile(ttl = "60s", background)]
fn load(id: u32) -> Result<String, Rc<String>> {
    Ok(format!("row {id}"))
}

fn main() {
    let _ = load(1);
}
