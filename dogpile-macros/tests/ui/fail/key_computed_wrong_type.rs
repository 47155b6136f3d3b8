use dogpile::dogpile;

struct Request {
    id: u64,
    name: String,
}

#[dogpile(ttl = "1m", key(u64) = request.name)]
fn profile(request: &Request) -> String {
    format!("{} {}", request.id, request.name)
}

fn main() {
    profile(&Request { id: 1, name: "a".into() });
}
