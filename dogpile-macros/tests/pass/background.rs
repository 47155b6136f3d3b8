#![deny(warnings)]
use dogpile::dogpile;
use std::path::Path;

#[dogpile(ttl = "60s", background)]
fn size(dir: &Path, name: &str, extra: u64) -> u64 {
    dir.join(name).as_os_str().len() as u64 + extra
}

#[dogpile(ttl = "60s", background)]
fn try_size(name: &str) -> Result<u64, String> {
    Ok(name.len() as u64)
}

// On an `async fn` (with dogpile's `tokio` feature) the refresh is spawned as a task.
#[dogpile(ttl = "60s", background)]
async fn fetch(url: &str, page: u32) -> String {
    format!("{url}?page={page}")
}

#[test]
fn runs() {
    assert_eq!(size(Path::new("/tmp"), "x", 1), 7);
    assert_eq!(size(Path::new("/tmp"), "x", 1), 7);
    assert_eq!(try_size("abc"), Ok(3));
    // Outside a tokio runtime the creator runs inline; a ready future needs no executor.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(fetch("x", 2)), "x?page=2");
}
