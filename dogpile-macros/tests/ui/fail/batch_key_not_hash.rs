use dogpile::dogpile;

#[dogpile(ttl = "1m", batch = weights)]
fn scaled(weights: &[f64]) -> Vec<f64> {
    weights.iter().map(|w| w * 2.0).collect()
}

fn main() {
    scaled(&[1.0]);
}
