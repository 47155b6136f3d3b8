//! The seed's second scenario: readers read a data file while one caller writes the
//! next version beside it and, under the write lock, moves it into place.
//!
//! Every reader holds a `ReadGuard` carrying the version it expects and checks the
//! file against it: a swap under a reader's feet would show up as a mismatch.
//!
//! Run: `cargo run --example datafile`

use dogpile::SyncReaderDogpile;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let dir = std::env::temp_dir().join(format!("dogpile-datafile-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let live = dir.join("data.txt");

    let datafile = Arc::new(SyncReaderDogpile::<u64>::new(Duration::from_millis(50)));
    let next_version = Arc::new(AtomicU64::new(1));
    let (reads, mismatches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let until = Instant::now() + Duration::from_secs(1);

    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (datafile, next_version, live, dir) = (
                datafile.clone(),
                next_version.clone(),
                live.clone(),
                dir.clone(),
            );
            let (reads, mismatches) = (reads.clone(), mismatches.clone());
            thread::spawn(move || {
                while Instant::now() < until {
                    let version = datafile.acquire(|| {
                        let version = next_version.fetch_add(1, Ordering::SeqCst);
                        regenerate(&datafile, &dir, &live, version).expect("regenerate");
                        version
                    });
                    let content = fs::read_to_string(&live).expect("read");
                    if content != format!("version {}", *version) {
                        mismatches.fetch_add(1, Ordering::Relaxed);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    drop(version); // the writer may swap the file now
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().expect("reader panicked");
    }

    let stats = datafile.stats();
    println!("reads:        {}", reads.load(Ordering::Relaxed));
    println!("versions:     {}", next_version.load(Ordering::SeqCst) - 1);
    println!(
        "waits:        {} (only for the very first version)",
        stats.waits
    );
    println!(
        "mismatches:   {} (a reader saw the file change under its guard)",
        mismatches.load(Ordering::Relaxed)
    );
    fs::remove_dir_all(&dir)?;
    assert_eq!(mismatches.load(Ordering::Relaxed), 0);
    Ok(())
}

/// Writes the next version beside the live file, then swaps it in while no reader
/// holds a guard.
fn regenerate(
    lock: &SyncReaderDogpile<u64>,
    dir: &Path,
    live: &PathBuf,
    version: u64,
) -> std::io::Result<()> {
    let next = dir.join("data.txt.next");
    fs::write(&next, format!("version {version}"))?;
    let _write = lock.acquire_write_lock(); // waits for readers; held until the publish
    fs::rename(&next, live)
}
