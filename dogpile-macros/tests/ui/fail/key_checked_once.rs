// A key part that is not `Hash + Eq + Clone` is reported once, at its type, whatever
// uses the key: the borrowed and owned parts of a background fn, a computed key, the
// ids of a batch fn, the key of a method or an associated fn.
use dogpile::dogpile;

#[derive(Clone, PartialEq)]
struct Point(f64);

struct Db;

#[dogpile(ttl = "60s", background)]
fn refreshed(p: Point, db: &Db) -> u64 {
    let _ = (p, db);
    1
}

#[dogpile(ttl = "60s", key(f64) = x * 2.0)]
fn computed(x: f64) -> u64 {
    x as u64
}

#[dogpile(ttl = "1m", batch = ids)]
async fn batch(ids: &[Point]) -> Result<Vec<u64>, String> {
    Ok(ids.iter().map(|p| p.0 as u64).collect())
}

struct Repo;

impl Repo {
    #[dogpile(ttl = "1m", key = p)]
    fn find(&self, p: Point) -> u32 {
        p.0 as u32
    }

    #[dogpile(ttl = "1m", associated)]
    fn named(p: Point) -> u32 {
        p.0 as u32
    }
}

fn main() {
    let _ = refreshed(Point(1.0), &Db);
    let _ = computed(1.0);
    let _ = batch(&[Point(1.0)]);
    let _ = Repo.find(Point(1.0));
    let _ = Repo::named(Point(1.0));
}
