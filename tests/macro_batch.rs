//! End-to-end: the attribute's batch form (`batch = ids`) over the real runtime. The
//! pool is context: neither `Hash` nor `Clone`, never stored. Time moves only through a
//! `ManualClock`; every wait on another thread is bounded (`common`).

use support::common;

use common::{join_all, Gate};
use dogpile::{dogpile, ManualClock};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, LazyLock, Mutex};
use std::thread;
use std::time::Duration;

/// A database pool: not `Hash`, not `Clone`; records each query's ids.
#[derive(Default)]
struct Pool {
    queries: Mutex<Vec<Vec<u64>>>,
    /// Each query waits for this gate when one is set.
    hold: Mutex<Option<Gate>>,
}

impl Pool {
    fn select(&self, ids: &[u64]) -> Vec<Option<String>> {
        self.queries.lock().unwrap().push(ids.to_vec());
        ids.iter()
            .map(|id| (id % 10 != 0).then(|| format!("user {id}")))
            .collect()
    }

    /// Each id's row as of this query: `"row {id} #{n}"` for the pool's `n`th query;
    /// waits for the `hold` gate, if one was set before the query began.
    fn select_versioned(&self, ids: &[u64]) -> Vec<String> {
        let hold = self.hold.lock().unwrap().clone();
        let n = {
            let mut queries = self.queries.lock().unwrap();
            queries.push(ids.to_vec());
            queries.len() - 1
        };
        if let Some(gate) = hold {
            gate.wait();
        }
        ids.iter().map(|id| format!("row {id} #{n}")).collect()
    }

    fn queries(&self) -> Vec<Vec<u64>> {
        self.queries.lock().unwrap().clone()
    }
}

fn expected(ids: &[u64]) -> Vec<Option<String>> {
    ids.iter()
        .map(|id| (id % 10 != 0).then(|| format!("user {id}")))
        .collect()
}

#[dogpile(ttl = "5m", batch = ids)]
fn users(db: &Pool, ids: &[u64]) -> Vec<Option<String>> {
    db.select(ids)
}

#[test]
fn overlapping_batches_from_many_threads_query_each_id_once() {
    let db = Arc::new(Pool::default());
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8u64)
        .map(|thread| {
            let (db, start) = (db.clone(), start.clone());
            thread::spawn(move || {
                let ids: Vec<u64> = (0..30).map(|i| (thread * 7 + i * 3) % 120).collect();
                start.wait();
                assert_eq!(users(&db, &ids), expected(&ids));
            })
        })
        .collect();
    for result in join_all(handles) {
        result.unwrap();
    }
    let mut queried: Vec<u64> = db.queries().into_iter().flatten().collect();
    let total = queried.len();
    queried.sort_unstable();
    queried.dedup();
    assert_eq!(total, queried.len(), "no id was queried twice");
    assert_eq!(USERS.len(), queried.len());
}

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[dogpile(ttl = "1m", batch = ids, clock = CLOCK.clone())]
fn profiles(db: &Pool, ids: &[u64]) -> Vec<String> {
    db.select_versioned(ids)
}

fn rows(ids: &[u64], n: usize) -> Vec<String> {
    ids.iter().map(|id| format!("row {id} #{n}")).collect()
}

#[test]
fn stale_ids_are_refreshed_in_one_query_while_other_callers_get_the_stale_values() {
    let db = Arc::new(Pool::default());
    let ids: Vec<u64> = (1..=40).collect();
    assert_eq!(profiles(&db, &ids), rows(&ids, 0));
    CLOCK.advance(Duration::from_secs(61));
    let gate = Gate::new();
    *db.hold.lock().unwrap() = Some(gate.clone());
    let refresher = {
        let (db, ids) = (db.clone(), ids.clone());
        thread::spawn(move || profiles(&db, &ids))
    };
    common::eventually("the refresh query runs", || db.queries().len() == 2);
    *db.hold.lock().unwrap() = None;
    // The refresh is in flight, held by the gate: the stale ids are served their stale
    // rows at once, and only the cold id is queried.
    let served = common::bounded("a batch over stale ids", {
        let db = db.clone();
        move || profiles(&db, &[5, 41, 3])
    });
    assert_eq!(served, ["row 5 #0", "row 41 #2", "row 3 #0"]);
    gate.open();
    let refreshed = join_all(vec![refresher]).pop().unwrap().unwrap();
    assert_eq!(
        refreshed,
        rows(&ids, 1),
        "the refreshing call returns its new rows"
    );
    assert_eq!(db.queries(), [ids.clone(), ids.clone(), vec![41]]);
    assert_eq!(profiles(&db, &[3]), ["row 3 #1"]);
}

#[dogpile(ttl = "5m", batch = ids)]
async fn scores(db: &Pool, ids: &[u64], bonus: u64) -> Vec<u64> {
    db.queries.lock().unwrap().push(ids.to_vec());
    tokio::task::yield_now().await;
    ids.iter().map(|id| id + bonus).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_batch_fn_awaits_the_body_for_the_missing_ids_only() {
    let db = Pool::default();
    assert_eq!(scores(&db, &[1, 2], 100).await, [101, 102]);
    assert_eq!(scores(&db, &[2, 3, 3], 100).await, [102, 103, 103]);
    assert_eq!(db.queries(), [vec![1, 2], vec![3]]);
}

static FAILURES: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "5m", batch = ids)]
fn balances(db: &Pool, ids: &[u64]) -> Result<Vec<u64>, Arc<String>> {
    db.queries.lock().unwrap().push(ids.to_vec());
    if FAILURES.fetch_add(1, SeqCst) == 0 {
        return Err(Arc::new("db down".into()));
    }
    Ok(ids.iter().map(|id| id * 10).collect())
}

#[test]
fn a_failed_batch_stores_nothing_and_the_next_call_asks_again() {
    let db = Pool::default();
    assert_eq!(balances(&db, &[1, 2]).unwrap_err().as_str(), "db down");
    assert!(BALANCES.is_empty());
    assert_eq!(balances(&db, &[2, 1]), Ok(vec![20, 10]));
    assert_eq!(db.queries(), [vec![1, 2], vec![2, 1]]);
}
