// A value type that is not `Clone` is reported once, at the return type, whatever calls
// the cache with it: not again by the async, background or batch calls.
use dogpile::dogpile;
use std::sync::Arc;

#[derive(Debug)]
struct Report;

#[dogpile(ttl = "60s")]
async fn plain(id: u32) -> Report {
    let _ = id;
    Report
}

#[dogpile(ttl = "60s", skip_none)]
async fn maybe(id: u32) -> Option<Report> {
    let _ = id;
    None
}

#[dogpile(ttl = "60s", background)]
fn refreshed(id: u32) -> Result<Report, Arc<String>> {
    let _ = id;
    Ok(Report)
}

#[dogpile(ttl = "60s", background)]
async fn refreshed_async(id: u32) -> Result<Report, Arc<String>> {
    let _ = id;
    Ok(Report)
}

#[dogpile(ttl = "1m", batch = ids)]
fn batch(ids: &[u32]) -> Result<Vec<Report>, String> {
    Ok(ids.iter().map(|_| Report).collect())
}

#[dogpile(ttl = "1m", batch = ids)]
async fn batch_async(ids: &[u32]) -> Result<Vec<Report>, String> {
    Ok(ids.iter().map(|_| Report).collect())
}

fn main() {
    let _ = plain(1);
    let _ = maybe(1);
    let _ = refreshed(1);
    let _ = refreshed_async(1);
    let _ = batch(&[1]);
    let _ = batch_async(&[1]);
}
