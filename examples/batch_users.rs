//! The loader pattern behind HTTP: an axum handler answers a page of 50 users with one
//! call of a memoized batch fn, which queries the database once, for the ids it does
//! not hold fresh.
//!
//! ```text
//! cargo run --example batch_users              # serve on 127.0.0.1:3000
//! curl 127.0.0.1:3000/users/page/2             # 50 users, ids 50..100
//! cargo run --example batch_users -- --demo    # three overlapping pages, then the queries
//! ```
//!
//! Pages overlap (page `n` is ids `25n..25n + 50`), as lists in a real service do: the
//! second page's request finds half its ids fresh and queries only the other half.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use dogpile::dogpile;
use serde::{Deserialize, Serialize};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct User {
    id: u64,
    name: String,
}

/// The database: a connection pool in a real service. Neither `Hash` nor `Clone`: the
/// batch fn's other arguments are context, never part of the key.
#[derive(Default)]
struct Db {
    /// The ids of each query, in order.
    queries: Mutex<Vec<Vec<u64>>>,
}

impl Db {
    /// `SELECT id, name FROM users WHERE id IN (..)`: one row per id that exists.
    async fn select_users(&self, ids: &[u64]) -> Vec<User> {
        self.queries.lock().unwrap().push(ids.to_vec());
        tokio::time::sleep(Duration::from_millis(20)).await;
        ids.iter()
            .filter(|id| *id % 7 != 0) // some ids have no row
            .map(|&id| User {
                id,
                name: format!("user {id}"),
            })
            .collect()
    }
}

/// The loader: one value per id, in the order of `ids` (`None` for an id with no row,
/// stored like any value). Called with the ids that need a value only.
#[dogpile(ttl = "5m", batch = ids)]
async fn users(db: &Db, ids: &[u64]) -> Vec<Option<User>> {
    let rows = db.select_users(ids).await;
    ids.iter()
        .map(|id| rows.iter().find(|user| user.id == *id).cloned())
        .collect()
}

const PAGE: u64 = 50;

/// `GET /users/page/{n}`: the 50 users of page `n` (ids `25n..25n + 50`).
async fn page(State(db): State<Arc<Db>>, Path(n): Path<u64>) -> Json<Vec<Option<User>>> {
    let ids: Vec<u64> = (n * PAGE / 2..n * PAGE / 2 + PAGE).collect();
    Json(users(&db, &ids).await)
}

fn app(db: Arc<Db>) -> Router {
    Router::new()
        .route("/users/page/{n}", get(page))
        .with_state(db)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = std::env::args().any(|arg| arg == "--demo");
    let db = Arc::new(Db::default());
    let addr = if demo {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr: SocketAddr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, app(db.clone())).into_future());
    if !demo {
        println!("serving on http://{addr}/users/page/0");
        server.await??;
        return Ok(());
    }
    let client = reqwest::Client::new();
    // Pages 0 and 1 at once (they share ids 25..50), then page 1 again (all fresh).
    let get_page = |n: u64| {
        let (client, url) = (client.clone(), format!("http://{addr}/users/page/{n}"));
        async move {
            client
                .get(url)
                .send()
                .await?
                .json::<Vec<Option<User>>>()
                .await
        }
    };
    let (first, second) = tokio::join!(get_page(0), get_page(1));
    let (first, second) = (first?, second?);
    let again = get_page(1).await?;
    assert_eq!(second, again);
    for (n, users) in [(0, &first), (1, &second)] {
        let found = users.iter().flatten().count();
        println!("page {n}: {} users asked, {found} found", users.len());
    }
    let queries = db.queries.lock().unwrap().clone();
    for ids in &queries {
        println!(
            "query: {} ids, {}..={}",
            ids.len(),
            ids[0],
            ids[ids.len() - 1]
        );
    }
    let mut queried: Vec<u64> = queries.into_iter().flatten().collect();
    queried.sort_unstable();
    assert_eq!(
        queried,
        (0..75).collect::<Vec<u64>>(),
        "each id queried once"
    );
    println!("{} ids queried for 150 asked: each id once", queried.len());
    server.abort();
    Ok(())
}
