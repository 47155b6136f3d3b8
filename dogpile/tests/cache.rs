//! Cache-level behaviour beyond the slot rules: capacity, builder validation, the
//! reader-synchronised cache, borrowed keys, the handle methods.

use support::common;

use common::{bounded, eventually, Gate};
use dogpile::mode::{Background, SyncReaders};
use dogpile::{BuildError, Cache, ManualClock};
use std::panic::catch_unwind;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(10);

#[test]
fn capacity_ten_thousand_holds_at_most_ten_thousand_of_a_hundred_thousand_keys() {
    // Ten times the capacity is enough to see the bound hold while keys stream through;
    // the million-key run, with resident memory, is in tests/memory.rs.
    let cache: Cache<u64, u64> = Cache::builder().ttl(TTL).capacity(10_000).build();
    for key in 0..100_000u64 {
        assert_eq!(cache.get_with(key, || key * 2), key * 2);
        if key % 1_000 == 0 {
            assert!(
                cache.len() <= 10_000,
                "{} entries at key {key}",
                cache.len()
            );
        }
    }
    assert!(cache.len() <= 10_000);
    let stats = cache.stats();
    assert!(stats.evictions >= 90_000, "{stats:?}");
    assert_eq!(stats.misses, 100_000);
}

#[test]
fn capacity_evicts_keys_nobody_asked_for_again_in_arrival_order() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .ttl(TTL)
        .capacity(16)
        .clock(clock.clone())
        .build();
    for key in 0..16 {
        cache.get_with(key, || key);
        clock.advance(Duration::from_millis(1));
    }
    // Needs room: no key was asked for twice, so the first to arrive (key 0) goes.
    cache.get_with(100, || 100);
    assert!(cache.len() <= 16);
    assert!(
        cache.get_with(0, || 999) == 999,
        "the first key to arrive was evicted"
    );
    assert_eq!(cache.get_with(15, || 999), 15, "a young entry stayed");
}

#[test]
fn a_full_cache_of_in_flight_creations_computes_without_storing() {
    let cache: Arc<Cache<u64, u64>> = Arc::new(Cache::builder().ttl(TTL).capacity(1).build());
    let gate = Gate::new();
    let holder = {
        let (cache, gate) = (cache.clone(), gate.clone());
        thread::spawn(move || {
            cache.get_with(1, || {
                gate.wait();
                1
            })
        })
    };
    eventually("key 1 in flight", || cache.len() == 1);
    let cache2 = cache.clone();
    assert_eq!(bounded("uncached", move || cache2.get_with(2, || 2)), 2);
    gate.open();
    assert_eq!(bounded("holder", move || holder.join().unwrap()), 1);
    assert_eq!(cache.len(), 1);
}

#[test]
fn builder_rejects_nonsense_with_a_message_naming_the_problem() {
    type Case = (Result<Cache<u8, u8>, BuildError>, BuildError, &'static str);
    let cases: [Case; 6] = [
        (Cache::builder().try_build(), BuildError::MissingTtl, "ttl"),
        (
            Cache::builder().ttl(Duration::ZERO).try_build(),
            BuildError::ZeroTtl,
            "ttl",
        ),
        (
            Cache::builder().ttl(TTL).capacity(0).try_build(),
            BuildError::ZeroCapacity,
            "capacity",
        ),
        (
            Cache::builder()
                .ttl(TTL)
                .retry_backoff(Duration::from_secs(2), Duration::from_secs(1))
                .try_build(),
            BuildError::BadBackoff,
            "retry_backoff",
        ),
        (
            Cache::builder()
                .ttl(TTL)
                .retry_backoff(Duration::ZERO, Duration::from_secs(1))
                .try_build(),
            BuildError::BadBackoff,
            "base <= cap",
        ),
        (
            Cache::builder()
                .ttl(TTL)
                .wait_at_most(Duration::ZERO)
                .try_build(),
            BuildError::ZeroWaitAtMost,
            "wait_at_most",
        ),
    ];
    for (built, expected, word) in cases {
        let error = built.expect_err("must be rejected");
        assert_eq!(error, expected);
        assert!(error.to_string().contains(word), "{error}");
    }
    let panic =
        catch_unwind(|| Cache::<u8, u8>::builder().capacity(0).ttl(TTL).build()).unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.starts_with("dogpile: capacity"), "{text}");
    assert!(catch_unwind(|| dogpile::Dogpile::<u8>::new(Duration::ZERO)).is_err());
}

#[test]
fn borrowed_lookups_find_the_owned_keys() {
    let cache: Cache<(String, u32), u32> = Cache::new(TTL);
    assert_eq!(cache.entry_by_ref(&("a", &1)).get_with(|| 10), 10);
    assert_eq!(cache.entry_by_ref(&("a", &1)).get_with(|| 11), 10);
    assert_eq!(cache.get_with(("a".to_string(), 1), || 12), 10);
    assert_eq!(cache.entry_by_ref(&("a", &2)).get_with(|| 13), 13);
    assert_eq!(cache.stats().hits, 2);
    let strings: Cache<String, u8> = Cache::new(TTL);
    strings.entry_by_ref("k").get_with(|| 1);
    assert_eq!(strings.remove("k"), Some(1));
}

#[test]
fn entry_by_ref_looks_up_invalidates_and_removes_without_an_owned_key() {
    let clock = ManualClock::new();
    let cache: Cache<String, u8> = Cache::builder()
        .ttl(TTL)
        .stale_while_revalidate(TTL)
        .clock(clock.clone())
        .build();
    let entry = || cache.entry_by_ref("k");
    assert_eq!((entry().get(), entry().contains()), (None, false));
    assert_eq!(entry().try_get_with(|| Ok::<_, ()>(1)), Ok(1));
    assert_eq!((entry().get(), entry().contains()), (Some(1), true));
    entry().invalidate();
    assert_eq!(entry().get(), Some(1), "soft: still served");
    assert_eq!(entry().get_with(|| 2), 2, "invalidated: refreshed");
    clock.advance(TTL * 2);
    assert_eq!(
        entry().get(),
        None,
        "past stale_while_revalidate: not servable"
    );
    assert!(!entry().contains());
    assert!(entry().remove().is_some());
    assert!(cache.is_empty());
    assert_eq!(entry().remove(), None);
    assert_eq!(
        cache.stats().calls(),
        2,
        "get, contains, remove are not calls"
    );
}

#[test]
fn get_contains_key_and_invalidate_all_never_create() {
    let clock = ManualClock::new();
    let cache: Cache<u8, u8> = Cache::builder()
        .ttl(TTL)
        .stale_while_revalidate(TTL)
        .clock(clock.clone())
        .build();
    assert_eq!(cache.get(&1), None);
    assert!(!cache.contains_key(&1));
    assert!(cache.is_empty(), "a look-up inserts nothing");
    for key in 0..4 {
        cache.get_with(key, || key);
    }
    cache.invalidate_all();
    assert_eq!(cache.get(&2), Some(2), "soft: still served");
    for key in 0..4 {
        assert_eq!(
            cache.get_with(key, || key + 10),
            key + 10,
            "every key stale"
        );
    }
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.stale_hits, stats.hits), (4, 4, 0));
    clock.advance(TTL * 2);
    assert_eq!(cache.get(&0), None, "past ttl + stale_while_revalidate");
    assert!(!cache.contains_key(&0));
    assert_eq!(cache.stats().calls(), 8);
}

#[test]
fn handle_methods_insert_remove_clear_len_and_stats_add_up() {
    let cache: Cache<u8, u8> = Cache::new(TTL);
    cache.insert(1, 10);
    assert_eq!(cache.get_with(1, || 0), 10);
    cache.get_with(2, || 20);
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.remove(&2), Some(20));
    assert_eq!(cache.remove(&2), None);
    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(cache.get_with(1, || 11), 11);
    let stats = cache.stats();
    assert_eq!(stats.calls(), 3);
    assert_eq!((stats.hits, stats.misses), (1, 2));
}

#[test]
fn a_sync_readers_cache_publishes_only_after_the_keys_guards_are_dropped() {
    let clock = ManualClock::new();
    let cache: Arc<Cache<u8, u64, SyncReaders>> = Arc::new(
        Cache::builder()
            .ttl(TTL)
            .sync_readers()
            .clock(clock.clone())
            .build(),
    );
    let guard = cache.get_with(1, || 1);
    let other_key = cache.get_with(2, || 5);
    clock.advance(TTL);
    let published = Gate::new();
    let writer = {
        let (cache, published) = (cache.clone(), published.clone());
        thread::spawn(move || {
            let value = *cache.get_with(1, || 2);
            published.open();
            value
        })
    };
    eventually("refresh claimed", || cache.stats().refreshes == 1);
    thread::sleep(Duration::from_millis(50));
    assert!(!published.is_open(), "published under a held guard");
    assert_eq!(*guard, 1);
    drop(other_key); // guards on other keys don't matter
    assert!(!published.is_open());
    drop(guard);
    assert_eq!(bounded("writer", move || writer.join().unwrap()), 2);
    assert_eq!(*cache.get_with(1, || unreachable!()), 2);
}

#[test]
fn clones_share_one_cache() {
    let cache: Cache<u8, u8> = Cache::new(TTL);
    let other = cache.clone();
    cache.get_with(1, || 1);
    assert_eq!(other.get_with(1, || 2), 1);
}

#[test]
fn a_failed_first_creation_leaves_no_entry_behind() {
    let cache: Cache<u32, u32> = Cache::new(TTL);
    for key in 0..100 {
        assert_eq!(
            cache.try_get_with(key, || Err::<u32, _>("down")),
            Err("down")
        );
    }
    assert_eq!(cache.len(), 0, "failed keys must not pile up");
    assert_eq!(cache.get_with(1, || 1), 1);
    assert_eq!(cache.len(), 1);
}

/// Every call is exactly one of hit, stale hit or miss, also when the cache is full of
/// creations in flight and a new key's value is computed without being stored: in every
/// mode, blocking and async. (The background paths used to skip the miss.)
#[test]
fn a_call_on_a_cache_full_of_creations_in_flight_counts_as_a_miss_in_every_mode() {
    fn hold_the_only_place<C: Send + Sync + 'static>(
        cache: &Arc<C>,
        create: impl Fn(&C, Gate) + Send + 'static,
    ) -> (Gate, thread::JoinHandle<()>) {
        let gate = Gate::new();
        let holder = {
            let (cache, gate) = (cache.clone(), gate.clone());
            thread::spawn(move || create(&cache, gate))
        };
        (gate, holder)
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let inline: Arc<Cache<u8, u8>> = Arc::new(Cache::builder().ttl(TTL).capacity(1).build());
    let (gate, holder) = hold_the_only_place(&inline, |c, g| {
        assert_eq!(
            c.get_with(1, || {
                g.wait();
                1
            }),
            1
        );
    });
    eventually("key 1 in flight", || inline.len() == 1);
    assert_eq!(inline.get_with(2, || 2), 2);
    assert_eq!(runtime.block_on(inline.get_with_async(3, async { 3 })), 3);
    gate.open();
    holder.join().unwrap();
    assert_eq!((inline.stats().misses, inline.stats().calls()), (3, 3));

    let background: Arc<Cache<u8, u8, Background>> = Arc::new(
        Cache::builder()
            .ttl(TTL)
            .capacity(1)
            .background_refresh()
            .build(),
    );
    let (gate, holder) = hold_the_only_place(&background, |c, g| {
        assert_eq!(
            c.get_with(1, move || {
                g.wait();
                1
            }),
            1
        );
    });
    eventually("key 1 in flight", || background.len() == 1);
    assert_eq!(background.get_with(2, || 2), 2);
    assert_eq!(background.try_get_with(3, || Ok::<_, ()>(3)), Ok(3));
    assert_eq!(
        runtime.block_on(background.get_with_async(4, async { 4 })),
        4
    );
    gate.open();
    holder.join().unwrap();
    assert_eq!(
        (background.stats().misses, background.stats().calls()),
        (4, 4)
    );

    let guarded: Arc<Cache<u8, u8, SyncReaders>> =
        Arc::new(Cache::builder().ttl(TTL).capacity(1).sync_readers().build());
    let (gate, holder) = hold_the_only_place(&guarded, |c, g| {
        drop(c.get_with(1, || {
            g.wait();
            1
        }))
    });
    eventually("key 1 in flight", || guarded.len() == 1);
    assert_eq!(
        *guarded.get_with(2, || 2),
        2,
        "computed, not stored, no panic"
    );
    gate.open();
    holder.join().unwrap();
    assert_eq!((guarded.stats().misses, guarded.stats().calls()), (2, 2));
}

/// `refresh_executor` gets every background refresh (R10) as a task: run, it publishes;
/// dropped unrun, it gives the refresh up and the next caller claims it again.
#[test]
fn a_custom_refresh_executor_runs_or_drops_the_refreshes_it_is_handed() {
    let queued: Arc<std::sync::Mutex<Vec<dogpile::RefreshTask>>> = Arc::default();
    let clock = ManualClock::new();
    let cache: Cache<u8, u8, Background> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .background_refresh()
        .refresh_executor({
            let queued = queued.clone();
            move |task| queued.lock().unwrap().push(task)
        })
        .build();
    assert_eq!(cache.get_with(1, || 1), 1, "a cold key is created inline");
    assert!(queued.lock().unwrap().is_empty());
    clock.advance(TTL);
    assert_eq!(cache.get_with(1, || 2), 1, "stale, handed off");
    assert_eq!(cache.get_with(1, || unreachable!("claimed")), 1);
    let dropped = queued
        .lock()
        .unwrap()
        .pop()
        .expect("one refresh handed off");
    drop(dropped);
    assert_eq!(cache.get_with(1, || 3), 1, "given up: claimed again");
    assert_eq!(queued.lock().unwrap().len(), 1);
    let task = queued.lock().unwrap().pop().unwrap();
    bounded("refresh task", move || task.run());
    assert_eq!(cache.get_with(1, || unreachable!("fresh")), 3);
    let stats = cache.stats();
    assert_eq!((stats.refreshes, stats.waits, stats.calls()), (2, 0, 5));
}

/// The builder holds nothing typed by the key and value, whatever it was given (a
/// capacity, `ttl_with`, a tier): it is `Send` and `Sync` for any key and value types,
/// and covariant in them.
#[test]
fn a_builder_is_send_sync_and_covariant_whatever_its_types() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<dogpile::CacheBuilder<std::rc::Rc<u8>, std::cell::Cell<u8>, Background>>();
    fn shorter<'a>(
        builder: dogpile::CacheBuilder<&'static str, &'static str>,
    ) -> dogpile::CacheBuilder<&'a str, &'a str> {
        builder
    }
    let builder = Cache::<&'static str, &'static str>::builder()
        .ttl(TTL)
        .capacity(2)
        .ttl_with(|_, value| Duration::from_secs(value.len() as u64));
    let cache = thread::spawn(move || builder).join().unwrap().build();
    assert_eq!(cache.get_with("a", || "one"), "one");
    let shortened = shorter(Cache::builder().ttl(TTL));
    assert!(format!("{shortened:?}").starts_with("CacheBuilder"));
}
