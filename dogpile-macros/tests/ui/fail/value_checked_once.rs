// A value type that is not `Clone` is reported once, at the return type, whatever calls
// the cache with it: not again by the async, background or batch calls, nor by the
// lifetime a `ttl` closure or `none_ttl` gives each value.
use dogpile::dogpile;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
struct Report(u32);

#[dogpile(ttl = "60s")]
async fn plain(id: u32) -> Report {
    let _ = id;
    Report(0)
}

#[dogpile(ttl = "60s", skip_none)]
async fn maybe(id: u32) -> Option<Report> {
    let _ = id;
    None
}

#[dogpile(ttl = "60s", background)]
fn refreshed(id: u32) -> Result<Report, Arc<String>> {
    let _ = id;
    Ok(Report(0))
}

#[dogpile(ttl = "60s", background)]
async fn refreshed_async(id: u32) -> Result<Report, Arc<String>> {
    let _ = id;
    Ok(Report(0))
}

#[dogpile(ttl = "1m", batch = ids)]
fn batch(ids: &[u32]) -> Result<Vec<Report>, String> {
    Ok(ids.iter().map(|_| Report(0)).collect())
}

#[dogpile(ttl = "1m", batch = ids)]
async fn batch_async(ids: &[u32]) -> Result<Vec<Report>, String> {
    Ok(ids.iter().map(|_| Report(0)).collect())
}

#[dogpile(ttl = |r: &Report| Duration::from_secs(r.0.into()))]
fn lifetime(id: u32) -> Report {
    Report(id)
}

#[dogpile(ttl = "1m", none_ttl = "5s")]
fn none_kept(id: u32) -> Option<Report> {
    Some(Report(id))
}

fn main() {
    let _ = plain(1);
    let _ = maybe(1);
    let _ = refreshed(1);
    let _ = refreshed_async(1);
    let _ = batch(&[1]);
    let _ = batch_async(&[1]);
    let _ = lifetime(1);
    let _ = none_kept(1);
}
