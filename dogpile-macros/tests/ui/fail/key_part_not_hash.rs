use dogpile::dogpile;

struct Pool;

#[derive(Clone, PartialEq)]
struct Filter {
    min: f64,
}

// `db` is not in the key and needs no bounds; `filter` is, and must be `Hash + Eq`.
#[dogpile(ttl = "1m", key = (filter, page))]
fn search(db: &Pool, filter: Filter, page: u32) -> Vec<u32> {
    let _ = (db, filter.min);
    vec![page]
}

fn main() {
    search(&Pool, Filter { min: 0.5 }, 1);
}
