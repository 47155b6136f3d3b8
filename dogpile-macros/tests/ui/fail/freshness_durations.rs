use dogpile::dogpile;

// A zero early-refresh window, an unparsable wait and a back-off without its cap.
#[dogpile(ttl = "60s", refresh_ahead = "0s", wait_at_most = "soon", retry_backoff = "1s")]
fn lookup(id: u32) -> Result<String, String> {
    Ok(format!("user {id}"))
}

fn main() {
    let _ = lookup(1);
}
