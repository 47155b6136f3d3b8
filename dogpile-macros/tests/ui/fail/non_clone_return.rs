use dogpile::dogpile;

struct Report {
    #[allow(dead_code)]
    text: String,
}

#[dogpile(ttl = "60s")]
fn report(id: u32) -> Report {
    Report {
        text: format!("report {id}"),
    }
}

fn main() {
    let _ = report(1);
}
