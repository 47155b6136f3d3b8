use dogpile::dogpile;
use std::rc::Rc;

// The body's future must be `Send`: it is passed to the runtime as `dyn Future + Send`.
#[dogpile(ttl = "60s")]
async fn lookup(id: u32) -> String {
    let local = Rc::new(id);
    std::future::ready(()).await;
    format!("user {local}")
}

fn main() {
    let _ = lookup(1);
}
