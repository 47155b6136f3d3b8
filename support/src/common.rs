//! Thread helpers for tests: every wait is bounded, so a hang fails the test instead of
//! stalling CI.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough for a loaded 2-core CI machine, short enough to fail fast on a hang.
pub const BOUND: Duration = Duration::from_secs(20);

/// How long one test binary may run before the watchdog ends it.
pub const WATCHDOG: Duration = Duration::from_secs(240);

/// Ends the whole test binary, failing, if it is still running after [`WATCHDOG`]: a
/// hang on a test's own thread (outside [`bounded`]) must fail CI, not stall it. Every
/// helper here starts it, so any test that coordinates threads is covered.
pub fn watchdog() {
    static START: std::sync::Once = std::sync::Once::new();
    START.call_once(|| {
        thread::spawn(|| {
            thread::sleep(WATCHDOG);
            eprintln!("watchdog: this test binary ran for {WATCHDOG:?}: a test hung");
            std::process::exit(101);
        });
    });
}

/// Runs `f` on its own thread and returns its result, failing if it takes longer than
/// [`BOUND`] (a hang) and re-raising its panic.
pub fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog();
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let out = f();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(BOUND) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still running after {BOUND:?} (hang)")
        }
    }
}

/// A one-shot gate: threads `wait` until someone `open`s it (bounded).
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Self {
        watchdog();
        Self::default()
    }

    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    pub fn is_open(&self) -> bool {
        *self.0 .0.lock().unwrap()
    }

    pub fn wait(&self) {
        let deadline = Instant::now() + BOUND;
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "gate never opened (hang)");
            open = self.0 .1.wait_timeout(open, left).unwrap().0;
        }
    }
}

/// Counts calls, e.g. of a creator.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `condition` until it holds, failing after [`BOUND`]. Used only to observe a
/// state another thread reaches (e.g. "it is now blocked"), never as a timing assertion.
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    watchdog();
    let deadline = Instant::now() + BOUND;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: never happened (hang)");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Joins every handle with one overall bound.
pub fn join_all<T: Send + 'static>(handles: Vec<thread::JoinHandle<T>>) -> Vec<thread::Result<T>> {
    bounded("join", move || {
        handles.into_iter().map(|h| h.join()).collect()
    })
}
