#![deny(warnings)]
use dogpile::dogpile;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

#[dogpile(ttl = "60s")]
async fn fetch(url: &str, retries: u8) -> String {
    format!("{url}#{retries}")
}

#[dogpile(ttl = "60s", stale_if_error)]
async fn try_fetch(url: &str) -> Result<String, String> {
    Ok(url.to_owned())
}

fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn main() {
    assert_eq!(block_on(fetch("a", 1)), "a#1");
    assert_eq!(block_on(fetch("a", 1)), "a#1");
    assert_eq!(block_on(try_fetch("b")).unwrap(), "b");
    assert_eq!(block_on(fetch_prime("a", 1)), "a#1");
}
