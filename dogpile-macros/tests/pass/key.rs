//! `key = ..`: only the named arguments (or a computed value) form the key; the others
//! need no bounds and are passed to the body.
use dogpile::{dogpile, Cache};
use std::sync::{Arc, LazyLock};

/// Neither `Hash` nor `Clone`.
struct Pool;

#[dogpile(ttl = "1m", key = id)]
fn user(db: &Pool, id: u64) -> Arc<String> {
    let _ = db;
    Arc::new(format!("user {id}"))
}

#[dogpile(ttl = "1m", key = (region, page))]
fn listing(db: &Pool, page: u32, region: &str, verbose: bool) -> String {
    let _ = (db, verbose);
    format!("{region}/{page}")
}

struct Request {
    id: u64,
}

#[dogpile(ttl = "1m", key(u64) = request.id * 2)]
async fn profile(request: &Request, db: &Pool) -> u64 {
    let _ = db;
    request.id
}

#[dogpile(ttl = "1m", key = ())]
fn config(db: &Pool) -> u8 {
    let _ = db;
    1
}

/// A borrowed key part with its own `ToOwned` (not `Clone`): keyed by its owned form.
#[derive(Hash, PartialEq, Eq)]
struct Query {
    text: String,
}

/// `Query`'s owned form: hashes and compares as the `Query` it holds.
#[derive(Hash, PartialEq, Eq)]
struct QueryBuf(Query);

impl Clone for QueryBuf {
    fn clone(&self) -> Self {
        QueryBuf(Query {
            text: self.0.text.clone(),
        })
    }
}

impl std::borrow::Borrow<Query> for QueryBuf {
    fn borrow(&self) -> &Query {
        &self.0
    }
}

impl ToOwned for Query {
    type Owned = QueryBuf;
    fn to_owned(&self) -> QueryBuf {
        QueryBuf(Query {
            text: self.text.clone(),
        })
    }
}

#[dogpile(ttl = "1m")]
fn search(query: &Query) -> usize {
    query.text.len()
}

#[dogpile(ttl = "1m", background)]
fn search_page(query: &Query, page: u32) -> usize {
    query.text.len() + page as usize
}

/// Memoized methods of a generic type: the handle is an associated fn.
struct Store<T>(T);

impl<T> Store<T> {
    #[dogpile(ttl = "1m", key = id)]
    fn get(&self, id: u64) -> u64 {
        id + 1
    }

    #[dogpile(ttl = "1m", associated)]
    fn name(id: &str) -> String {
        id.to_uppercase()
    }
}

#[test]
fn runs() {
    assert_eq!(*user(&Pool, 1), "user 1");
    assert_eq!(listing(&Pool, 2, "eu", true), "eu/2");
    assert_eq!(config(&Pool), 1);
    let _: &LazyLock<Cache<u64, Arc<String>>> = &USER;
    let _: &LazyLock<Cache<(String, u32), String>> = &LISTING;
    let _: &LazyLock<Cache<u64, u64>> = &PROFILE;
    let _: &LazyLock<Cache<(), u8>> = &CONFIG;
    let _ = profile(&Request { id: 3 }, &Pool);

    let query = Query { text: "abc".into() };
    assert_eq!(search(&query), 3);
    assert_eq!(search(&query), 3);
    assert_eq!(SEARCH.stats().hits, 1);
    assert_eq!(search_prime(&query), 3);
    let _: &LazyLock<Cache<QueryBuf, usize, dogpile::mode::Inline>> = &SEARCH;
    assert_eq!(search_page(&query, 1), 4);
    assert_eq!(search_page(&query, 1), 4);
    let _: &LazyLock<Cache<(QueryBuf, u32), usize, dogpile::mode::Background>> = &SEARCH_PAGE;

    let store = Store(());
    let _ = &store.0;
    assert_eq!(store.get(1), 2);
    assert_eq!(store.get(1), 2);
    assert_eq!(Store::<()>::get_cache().stats().hits, 1);
    assert_eq!(Store::<u8>::name("a"), "A");
}
