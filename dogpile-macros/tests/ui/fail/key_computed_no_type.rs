use dogpile::dogpile;

struct Request {
    id: u64,
}

#[dogpile(ttl = "1m", key = request.id)]
fn profile(request: &Request) -> u64 {
    request.id
}

fn main() {
    profile(&Request { id: 1 });
}
