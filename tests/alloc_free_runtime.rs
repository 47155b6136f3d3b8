//! The runtime's hit paths allocate nothing through `Cache::entry_by_ref`, in every mode,
//! blocking and async: a fresh hit (R2), and a stale hit served to a caller that does not
//! refresh (R3, R10), by a borrowed key (`&str` for `String`, `(&str, &u32)` for
//! `(String, u32)`). The owned key is built only when an entry must be stored, or when a
//! background refresh must own it.
//!
//! `allocation-counter` counts the calling thread's allocations only, so the thread that
//! holds a refresh claim meanwhile (and tests running in parallel) do not count. Each
//! test makes one hit before measuring: the first hit in a process starts the default
//! clock's ticker thread (a one-time allocation, not per call).

use dogpile::mode::{Background, Inline, SyncReaders};
use dogpile::KeyRef;
use dogpile::{Cache, ManualClock, RefreshTask};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(60);
const HITS: usize = 200;
/// A bound on every wait for the other thread: a hang becomes a failure.
const PATIENCE: Duration = Duration::from_secs(10);

type Pages<M> = Cache<(String, u32), Arc<str>, M>;

/// Polls a future once: a hit must be ready at once, without waiting.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a hit awaited"),
    }
}

fn assert_no_allocation(what: &str, hits: impl FnOnce()) {
    let info = allocation_counter::measure(hits);
    assert_eq!(info.count_total, 0, "{HITS} {what} allocated: {info:?}");
}

fn inline_cache(clock: &ManualClock) -> Pages<Inline> {
    Cache::builder().ttl(TTL).clock(clock.clone()).build()
}

fn sync_readers_cache(clock: &ManualClock) -> Pages<SyncReaders> {
    Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .sync_readers()
        .build()
}

/// A background cache whose refreshes are queued until the test runs (or drops) them, so
/// that a stale key's claim stays held while the test measures.
fn background_cache(clock: &ManualClock) -> (Pages<Background>, Arc<Mutex<Vec<RefreshTask>>>) {
    let queued: Arc<Mutex<Vec<RefreshTask>>> = Arc::default();
    let sink = queued.clone();
    let cache = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .background_refresh()
        .refresh_executor(move |task| sink.lock().unwrap().push(task))
        .build();
    (cache, queued)
}

/// `HITS` fresh hits of each of the four calls by reference (`get_with`, `try_get_with`
/// and their async forms) on `$cache`, whose mode gives each call its own signature.
macro_rules! fresh_hits_four_ways {
    ($cache:ident, $key:ident) => {
        for _ in 0..HITS {
            let by_ref = $cache.entry_by_ref(black_box(&$key));
            black_box(by_ref.get_with(|| unreachable!("fresh")));
            let by_ref = $cache.entry_by_ref(black_box(&$key));
            black_box(by_ref.try_get_with(|| Err::<Arc<str>, ()>(())).unwrap());
            let by_ref = $cache.entry_by_ref(black_box(&$key));
            black_box(ready(
                by_ref.get_with_async(async { unreachable!("fresh") }),
            ));
            let by_ref = $cache.entry_by_ref(black_box(&$key));
            let future = by_ref.try_get_with_async(async { Err::<Arc<str>, ()>(()) });
            black_box(ready(future).unwrap());
        }
    };
}

#[test]
fn fresh_hits_by_ref_allocate_nothing_in_every_mode() {
    let clock = ManualClock::new();
    let page = String::from("/articles/42");
    let key = (page.as_str(), &2u32);
    let value: Arc<str> = "v".into();

    let inline = inline_cache(&clock);
    inline.entry_by_ref(&key).get_with(|| value.clone());
    inline.entry_by_ref(&key).get_with(|| unreachable!("fresh"));
    assert_no_allocation("inline fresh hits", || {
        fresh_hits_four_ways!(inline, key);
    });
    assert_eq!(inline.stats().hits, 1 + 4 * HITS as u64);

    let (background, _queued) = background_cache(&clock);
    background.entry_by_ref(&key).get_with(|| "v".into());
    background
        .entry_by_ref(&key)
        .get_with(|| unreachable!("fresh"));
    assert_no_allocation("background fresh hits", || {
        fresh_hits_four_ways!(background, key);
    });
    assert_eq!(background.stats().hits, 1 + 4 * HITS as u64);

    let guarded = sync_readers_cache(&clock);
    drop(guarded.entry_by_ref(&key).get_with(|| "v".into()));
    drop(
        guarded
            .entry_by_ref(&key)
            .get_with(|| unreachable!("fresh")),
    );
    assert_no_allocation("reader-synchronised fresh hits", || {
        for _ in 0..HITS {
            let guard = guarded
                .entry_by_ref(black_box(&key))
                .get_with(|| unreachable!("fresh"));
            assert_eq!(&**guard, "v");
            let guard = guarded
                .entry_by_ref(black_box(&key))
                .try_get_with(|| Err::<Arc<str>, ()>(()))
                .unwrap();
            black_box(guard);
        }
    });
    assert_eq!(guarded.stats().hits, 1 + 2 * HITS as u64);
}

#[test]
fn a_fresh_hit_by_str_for_a_string_key_allocates_nothing() {
    let clock = ManualClock::new();
    let guarded: Cache<String, u64, SyncReaders> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .sync_readers()
        .build();
    let (plain, background): (Cache<String, u64>, Cache<String, u64, Background>) = (
        Cache::builder().ttl(TTL).clock(clock.clone()).build(),
        Cache::builder()
            .ttl(TTL)
            .clock(clock.clone())
            .background_refresh()
            .build(),
    );
    for _ in 0..2 {
        drop(guarded.entry_by_ref("user:7").get_with(|| 7));
        plain.entry_by_ref("user:7").get_with(|| 7);
        background.entry_by_ref("user:7").get_with(|| 7);
    }
    assert_no_allocation("fresh hits by &str", || {
        for _ in 0..HITS {
            assert_eq!(*guarded.entry_by_ref("user:7").get_with(|| 0), 7);
            assert_eq!(plain.entry_by_ref("user:7").get_with(|| 0), 7);
            assert_eq!(background.entry_by_ref("user:7").get_with(|| 0), 7);
        }
    });
}

/// A bounded cache reaches its entries through another path (see `Cache`'s eviction
/// docs): its hits allocate nothing either, by reference or by `get`, guarded or not.
#[test]
fn fresh_hits_of_a_bounded_cache_allocate_nothing() {
    let clock = ManualClock::new();
    let page = String::from("/articles/42");
    let key = (page.as_str(), &2u32);
    let owned = (page.clone(), 2u32);
    let bounded: Pages<Inline> = Cache::builder()
        .ttl(TTL)
        .capacity(100)
        .clock(clock.clone())
        .build();
    let guarded: Pages<SyncReaders> = Cache::builder()
        .ttl(TTL)
        .capacity(100)
        .clock(clock.clone())
        .sync_readers()
        .build();
    for _ in 0..2 {
        bounded.entry_by_ref(&key).get_with(|| "v".into());
        drop(guarded.entry_by_ref(&key).get_with(|| "v".into()));
    }
    assert_no_allocation("bounded fresh hits", || {
        fresh_hits_four_ways!(bounded, key);
        for _ in 0..HITS {
            black_box(bounded.get(black_box(&owned)).expect("fresh"));
            assert!(bounded.contains_key(black_box(&owned)));
            let guard = guarded
                .entry_by_ref(black_box(&key))
                .get_with(|| unreachable!("fresh"));
            assert_eq!(&**guard, "v");
        }
    });
    assert_eq!(bounded.stats().hits, 1 + 4 * HITS as u64);
    assert_eq!(guarded.stats().hits, 1 + HITS as u64);
}

/// Runs `refresh` on another thread until its creator has started (it then holds the
/// key's claim), runs `measure`, lets the creator finish, and returns what it returned.
fn while_another_caller_refreshes<R: Send + 'static>(
    refresh: impl FnOnce(Box<dyn FnOnce() -> Arc<str> + Send>) -> R + Send + 'static,
    measure: impl FnOnce(),
) -> R {
    let (started, has_started) = mpsc::channel();
    let (finish, may_finish) = mpsc::channel::<()>();
    let refresher = thread::spawn(move || {
        refresh(Box::new(move || {
            started.send(()).unwrap();
            may_finish
                .recv_timeout(PATIENCE)
                .expect("the test never let go");
            "new".into()
        }))
    });
    has_started
        .recv_timeout(PATIENCE)
        .expect("the refresh never started");
    measure();
    finish.send(()).unwrap();
    refresher.join().expect("the refreshing caller panicked")
}

#[test]
fn stale_hits_by_ref_served_while_another_caller_refreshes_allocate_nothing() {
    let clock = ManualClock::new();
    let page = String::from("/articles/42");
    let key = (page.as_str(), &2u32);

    let inline = inline_cache(&clock);
    inline.entry_by_ref(&key).get_with(|| "old".into());
    clock.advance(TTL);
    let refresher = inline.clone();
    let claimant_got = while_another_caller_refreshes(
        move |create| refresher.get_with(("/articles/42".into(), 2), create),
        || {
            assert_no_allocation("inline stale hits", || {
                for _ in 0..HITS {
                    let by_ref = inline.entry_by_ref(black_box(&key));
                    assert_eq!(&*by_ref.get_with(|| unreachable!("claimed")), "old");
                    let by_ref = inline.entry_by_ref(black_box(&key));
                    let stale = by_ref.try_get_with(|| Err::<Arc<str>, ()>(()));
                    assert_eq!(&*stale.unwrap(), "old");
                    let by_ref = inline.entry_by_ref(black_box(&key));
                    let stale = ready(by_ref.get_with_async(async { unreachable!("claimed") }));
                    assert_eq!(&*stale, "old");
                    let by_ref = inline.entry_by_ref(black_box(&key));
                    let stale = ready(by_ref.try_get_with_async(async { Err::<_, ()>(()) }));
                    assert_eq!(&*stale.unwrap(), "old");
                }
            });
        },
    );
    assert_eq!(&*claimant_got, "new");
    let stats = inline.stats();
    assert_eq!(
        (stats.stale_hits, stats.refreshes),
        (1 + 4 * HITS as u64, 1)
    );
    assert_eq!(&*inline.entry_by_ref(&key).get_with(|| "x".into()), "new");

    let guarded = sync_readers_cache(&clock);
    drop(guarded.entry_by_ref(&key).get_with(|| "old".into()));
    clock.advance(TTL);
    let refresher = guarded.clone();
    let claimant_got = while_another_caller_refreshes(
        move |create| Arc::clone(&refresher.get_with(("/articles/42".into(), 2), create)),
        || {
            assert_no_allocation("reader-synchronised stale hits", || {
                for _ in 0..HITS {
                    let by_ref = guarded.entry_by_ref(black_box(&key));
                    assert_eq!(&**by_ref.get_with(|| unreachable!("claimed")), "old");
                    let by_ref = guarded.entry_by_ref(black_box(&key));
                    let stale = by_ref.try_get_with(|| Err::<Arc<str>, ()>(())).unwrap();
                    assert_eq!(&**stale, "old");
                }
            });
        },
    );
    assert_eq!(&*claimant_got, "new");
    assert_eq!(guarded.stats().stale_hits, 1 + 2 * HITS as u64);
}

#[test]
fn background_stale_hits_by_ref_allocate_nothing_once_the_refresh_is_handed_off() {
    let clock = ManualClock::new();
    let page = String::from("/articles/42");
    let key = (page.as_str(), &2u32);
    let (background, queued) = background_cache(&clock);
    background.entry_by_ref(&key).get_with(|| "old".into());
    clock.advance(TTL);
    // The claimant returns the stale value too (R10); its refresh waits in the queue,
    // holding the claim, and owns its key.
    let claimant = background.entry_by_ref(&key).get_with(|| "new".into());
    assert_eq!(&*claimant, "old");
    assert_eq!(queued.lock().unwrap().len(), 1);

    assert_no_allocation("background stale hits", || {
        for _ in 0..HITS {
            let by_ref = background.entry_by_ref(black_box(&key));
            assert_eq!(&*by_ref.get_with(|| unreachable!("claimed")), "old");
            let by_ref = background.entry_by_ref(black_box(&key));
            let stale = by_ref.try_get_with(|| Err::<Arc<str>, ()>(()));
            assert_eq!(&*stale.unwrap(), "old");
            let by_ref = background.entry_by_ref(black_box(&key));
            let stale = ready(by_ref.get_with_async(async { unreachable!("claimed") }));
            assert_eq!(&*stale, "old");
            let by_ref = background.entry_by_ref(black_box(&key));
            let stale = ready(by_ref.try_get_with_async(async { Err::<_, ()>(()) }));
            assert_eq!(&*stale.unwrap(), "old");
        }
    });
    assert_eq!(
        queued.lock().unwrap().len(),
        1,
        "only one refresh was claimed"
    );
    let task = queued.lock().unwrap().pop().unwrap();
    task.run();
    assert_eq!(
        &*background.entry_by_ref(&key).get_with(|| "x".into()),
        "new"
    );
    let stats = background.stats();
    assert_eq!(
        (stats.stale_hits, stats.refreshes),
        (1 + 4 * HITS as u64, 1)
    );
}

/// A borrowed key that counts how often the cache builds the owned key from it.
#[derive(Clone, Copy)]
struct Counted<'a> {
    name: &'a str,
    built: &'a AtomicUsize,
}

impl Hash for Counted<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state); // as the `String` it stands for
    }
}

impl KeyRef<String> for Counted<'_> {
    fn eq_key(&self, key: &String) -> bool {
        self.name == key
    }

    fn to_key(&self) -> String {
        self.built.fetch_add(1, SeqCst);
        self.name.to_owned()
    }
}

/// Past the hit path too, a call by a borrowed key builds the owned key only to insert a
/// new entry, or to hand a background refresh its own copy: not to claim a stale
/// refresh, to wait for a creation in flight, or to drop a failed creation's entry.
#[test]
fn the_owned_key_is_built_only_to_insert_an_entry_or_for_a_background_refresh() {
    let clock = ManualClock::new();
    let built = AtomicUsize::new(0);
    let key = Counted {
        name: "user:7",
        built: &built,
    };
    let inline: Cache<String, u64> = Cache::builder().ttl(TTL).clock(clock.clone()).build();
    assert_eq!(inline.entry_by_ref(&key).get_with(|| 1), 1);
    assert_eq!(
        built.swap(0, SeqCst),
        1,
        "a cold miss inserts: one owned key"
    );
    clock.advance(TTL);
    assert_eq!(inline.entry_by_ref(&key).get_with(|| 2), 2);
    assert_eq!(
        ready(inline.entry_by_ref(&key).get_with_async(async { 3 })),
        2
    );
    clock.advance(TTL);
    assert_eq!(
        ready(inline.entry_by_ref(&key).get_with_async(async { 3 })),
        3
    );
    assert_eq!(inline.stats().refreshes, 2);
    assert_eq!(built.load(SeqCst), 0, "stale claims, blocking and async");

    // A failed first creation's entry is dropped by the borrowed key.
    let failing = Counted {
        name: "user:8",
        built: &built,
    };
    assert_eq!(
        inline.entry_by_ref(&failing).try_get_with(|| Err(())),
        Err(())
    );
    assert_eq!(
        (inline.len(), built.swap(0, SeqCst)),
        (1, 1),
        "only the insert"
    );

    let guarded: Cache<String, u64, SyncReaders> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .sync_readers()
        .build();
    drop(guarded.entry_by_ref(&key).get_with(|| 1));
    assert_eq!(built.swap(0, SeqCst), 1);
    clock.advance(TTL);
    assert_eq!(*guarded.entry_by_ref(&key).get_with(|| 2), 2);
    assert_eq!(built.load(SeqCst), 0, "a reader-synchronised stale claim");

    let (background, queued) = {
        let queued: Arc<Mutex<Vec<RefreshTask>>> = Arc::default();
        let sink = queued.clone();
        let cache: Cache<String, u64, Background> = Cache::builder()
            .ttl(TTL)
            .clock(clock.clone())
            .background_refresh()
            .refresh_executor(move |task| sink.lock().unwrap().push(task))
            .build();
        (cache, queued)
    };
    background.entry_by_ref(&key).get_with(|| 1);
    assert_eq!(built.swap(0, SeqCst), 1);
    clock.advance(TTL);
    assert_eq!(background.entry_by_ref(&key).get_with(|| 2), 1);
    assert_eq!(
        built.swap(0, SeqCst),
        1,
        "the handed-off refresh owns its key"
    );
    queued.lock().unwrap().pop().unwrap().run();
    assert_eq!(background.entry_by_ref(&key).get_with(|| 3), 2);

    // A caller by reference that waits for a creation in flight.
    static WAITER_BUILT: AtomicUsize = AtomicUsize::new(0);
    let cold: Cache<String, u64> = Cache::builder().ttl(TTL).clock(clock.clone()).build();
    let (creator, waiter_cache) = (cold.clone(), cold.clone());
    let mut waiter = None;
    let claimant_got = while_another_caller_refreshes(
        move |create| {
            creator.get_with("user:9".into(), move || {
                create();
                9
            })
        },
        || {
            waiter = Some(thread::spawn(move || {
                let key = Counted {
                    name: "user:9",
                    built: &WAITER_BUILT,
                };
                waiter_cache.entry_by_ref(&key).get_with(|| 0)
            }));
            let deadline = std::time::Instant::now() + PATIENCE;
            while cold.stats().waits == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the caller never waited"
                );
                thread::yield_now();
            }
        },
    );
    assert_eq!(claimant_got, 9);
    let waited = waiter.unwrap().join().expect("the waiter panicked");
    assert_eq!((waited, WAITER_BUILT.load(SeqCst)), (9, 0), "a waiter");
}
