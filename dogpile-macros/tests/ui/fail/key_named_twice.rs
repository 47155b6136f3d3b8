use dogpile::dogpile;

#[dogpile(ttl = "1m", key = (region, page, region))]
fn listing(region: &str, page: u32) -> String {
    format!("{region}/{page}")
}

fn main() {
    listing("eu", 1);
}
