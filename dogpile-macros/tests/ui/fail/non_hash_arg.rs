use dogpile::dogpile;

#[derive(Clone, PartialEq)]
struct Point {
    x: f64,
    y: f64,
}

#[dogpile(ttl = "60s")]
fn norm(label: &str, p: Point) -> f64 {
    let _ = label;
    (p.x * p.x + p.y * p.y).sqrt()
}

fn main() {
    let _ = norm("p", Point { x: 1.0, y: 2.0 });
}
