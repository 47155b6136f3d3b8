//! `batch = ids`: the slice's elements are the keys, the other arguments are context
//! (no bounds), the body is called with the missing ids only, and the wrapper answers
//! every id in order.
use dogpile::{dogpile, Cache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// Neither `Hash` nor `Clone`.
struct Pool {
    asked: Mutex<Vec<Vec<u64>>>,
}

#[dogpile(ttl = "1m", batch = ids)]
fn users(db: &Pool, ids: &[u64]) -> Vec<Option<String>> {
    db.asked.lock().unwrap().push(ids.to_vec());
    ids.iter()
        .map(|id| (id % 2 == 1).then(|| format!("user {id}")))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
struct Down;

static FAIL: AtomicUsize = AtomicUsize::new(1);

#[dogpile(ttl = "1m", batch = names)]
fn lengths(names: &[String], scale: usize) -> Result<std::vec::Vec<usize>, Down> {
    if FAIL.fetch_sub(1, Ordering::SeqCst) == 1 {
        return Err(Down);
    }
    Ok(names.iter().map(|name| name.len() * scale).collect())
}

#[dogpile(ttl = "1m", batch = ids)]
async fn scores(db: &Pool, ids: &[u64], bonus: u64) -> Vec<u64> {
    db.asked.lock().unwrap().push(ids.to_vec());
    ids.iter().map(|id| id + bonus).collect()
}

#[dogpile(ttl = "1m", batch = ids)]
async fn checked(ids: &[u8]) -> Result<Vec<u8>, Arc<String>> {
    Ok(ids.to_vec())
}

struct Repo {
    db: Pool,
}

impl Repo {
    #[dogpile(ttl = "1m", batch = ids)]
    fn titles(&self, ids: &[u32]) -> Vec<String> {
        self.db
            .asked
            .lock()
            .unwrap()
            .push(ids.iter().map(|&id| id.into()).collect());
        ids.iter().map(|id| format!("title {id}")).collect()
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

#[test]
fn runs() {
    let db = Pool {
        asked: Mutex::new(Vec::new()),
    };
    assert_eq!(users(&db, &[1, 2]), [Some("user 1".into()), None]);
    assert_eq!(
        users(&db, &[3, 1, 2, 3]),
        [
            Some("user 3".into()),
            Some("user 1".into()),
            None,
            Some("user 3".into())
        ]
    );
    assert_eq!(*db.asked.lock().unwrap(), [vec![1, 2], vec![3]]);
    let _: &LazyLock<Cache<u64, Option<String>>> = &USERS;

    let names = ["ab".to_string(), "cde".to_string()];
    assert_eq!(lengths(&names, 2), Err(Down));
    assert_eq!(lengths(&names, 2), Ok(vec![4, 6]));
    assert_eq!(LENGTHS.len(), 2);
    let _: &LazyLock<Cache<String, usize>> = &LENGTHS;

    db.asked.lock().unwrap().clear();
    assert_eq!(block_on(scores(&db, &[1, 2], 10)), [11, 12]);
    assert_eq!(block_on(scores(&db, &[2, 3], 10)), [12, 13]);
    assert_eq!(*db.asked.lock().unwrap(), [vec![1, 2], vec![3]]);
    assert_eq!(block_on(checked(&[5])), Ok(vec![5]));

    let repo = Repo {
        db: Pool {
            asked: Mutex::new(Vec::new()),
        },
    };
    assert_eq!(repo.titles(&[7, 8]), ["title 7", "title 8"]);
    assert_eq!(repo.titles(&[8]), ["title 8"]);
    assert_eq!(*repo.db.asked.lock().unwrap(), [vec![7, 8]]);
    let _: &Cache<u32, String> = Repo::titles_cache();

    assert_eq!(users_prime(&db, &[2]), [None]);
    assert_eq!(USERS.get(&2), Some(None));
}
