use dogpile::dogpile;

// `&[f64]` is keyed by `Vec<f64>`, which is not `Hash`.
#[dogpile(ttl = "60s")]
fn mean(samples: &[f64]) -> f64 {
    samples.iter().sum::<f64>() / samples.len() as f64
}

fn main() {
    let _ = mean(&[1.0, 2.0]);
}
