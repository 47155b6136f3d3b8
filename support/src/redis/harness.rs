//! The harness of a test binary whose tests need a `redis-server` (`harness = false`).
//!
//! It reads the command line and reports as cargo's own harness does (libtest-mimic).
//! Where no `redis-server` is found, the tests that need one are marked ignored at run
//! time (each is named in the output, `... ignored`), and after the summary one banner
//! says how many were skipped and how to run them; the binary passes. With
//! `DOGPILE_REQUIRE_REDIS=1`, or with a `REDIS_SERVER` that does not run, those tests
//! fail instead, each saying why.

use std::future::Future;

use libtest_mimic::{Arguments, Failed, Trial};

use super::find::{required, server_binary, SERVER_VAR};

/// The tests of one binary; [`run`](Suite::run) is its `main`.
#[derive(Default)]
pub struct Suite {
    trials: Vec<Trial>,
    one_at_a_time: bool,
}

impl Suite {
    pub fn new() -> Suite {
        Suite::default()
    }

    /// A test that starts its own `redis-server`(s).
    pub fn needs_redis(&mut self, name: &str, test: impl FnOnce() + Send + 'static) -> &mut Self {
        let missing = server_binary().err();
        let skip = missing.is_some() && !required() && std::env::var_os(SERVER_VAR).is_none();
        let trial = Trial::test(name, move || match missing {
            None => {
                test();
                Ok(())
            }
            Some(missing) => Err(Failed::from(format!(
                "this test needs a redis-server.\n{missing}"
            ))),
        });
        self.trials.push(trial.with_ignored_flag(skip));
        self
    }

    /// An async test (run on a current-thread tokio runtime) that starts its own
    /// `redis-server`(s).
    pub fn needs_redis_async<F>(
        &mut self,
        name: &str,
        test: impl FnOnce() -> F + Send + 'static,
    ) -> &mut Self
    where
        F: Future<Output = ()>,
    {
        self.needs_redis(name, move || block_on(test()))
    }

    /// A test that needs no server: it always runs.
    pub fn plain(&mut self, name: &str, test: impl FnOnce() + Send + 'static) -> &mut Self {
        self.trials.push(Trial::test(name, move || {
            test();
            Ok(())
        }));
        self
    }

    /// Runs the tests one after another unless `--test-threads` says otherwise (for
    /// tests that load every core or time their processes).
    pub fn one_at_a_time(&mut self) -> &mut Self {
        self.one_at_a_time = true;
        self
    }

    /// Runs the tests the command line selects, prints the skip banner if any test was
    /// skipped, and exits with the harness's status.
    pub fn run(&mut self) -> ! {
        let mut args = Arguments::from_args();
        if self.one_at_a_time && args.test_threads.is_none() {
            args.test_threads = Some(1);
        }
        let trials = std::mem::take(&mut self.trials);
        let conclusion = libtest_mimic::run(&args, trials);
        if !args.list && conclusion.num_ignored > 0 {
            if let Err(missing) = server_binary() {
                println!("{}", banner(conclusion.num_ignored, missing));
            }
        }
        conclusion.exit()
    }
}

/// What a binary that skipped `skipped` tests says once, after its summary.
fn banner(skipped: u64, missing: &str) -> String {
    let rule = "=".repeat(88);
    let tests = if skipped == 1 {
        "test of this binary (marked `ignored` above): it needs"
    } else {
        "tests of this binary (each marked `ignored` above): they need"
    };
    format!("{rule}\nSKIPPED {skipped} {tests} a redis-server.\n{missing}\n{rule}")
}

/// For a binary that is not a test suite (a bench): whether to skip `what` because no
/// `redis-server` is found, after saying so once; with `DOGPILE_REQUIRE_REDIS=1` (or a
/// `REDIS_SERVER` that does not run) a missing server is a panic instead.
pub fn skip_without_server(what: &str) -> bool {
    let Err(missing) = server_binary() else {
        return false;
    };
    if required() || std::env::var_os(SERVER_VAR).is_some() {
        panic!("{what} needs a redis-server.\n{missing}");
    }
    let rule = "=".repeat(88);
    println!("{rule}\nSKIPPED {what}: it needs a redis-server.\n{missing}\n{rule}");
    true
}

/// Runs `future` to completion on a current-thread tokio runtime with its timers and
/// IO enabled (what `#[tokio::test]` does).
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The `main` of a test binary whose tests need a `redis-server`: each section lists
/// test fns (plain `fn`s without `#[test]`: the binary has `harness = false`), by
/// path, optionally under a `#[cfg(..)]`; a test fn missing from the lists is dead code
/// (a warning).
///
/// ```no_run
/// fn a_value_is_shared() {
///     let server = support::redis::RedisServer::start();
///     assert!(server.ping());
/// }
///
/// async fn an_async_caller_waits() {}
///
/// fn a_bad_url_is_an_error() {}
///
/// support::redis_tests! {
///     needs_redis: [a_value_is_shared],
///     needs_redis_async: [an_async_caller_waits],
///     plain: [a_bad_url_is_an_error],
/// }
/// ```
#[macro_export]
macro_rules! redis_tests {
    ($($kind:ident: [$($(#[$attr:meta])* $test:path),* $(,)?]),* $(,)?) => {
        fn main() {
            let mut suite = $crate::redis::Suite::new();
            $($(
                $(#[$attr])*
                suite.$kind(&stringify!($test).replace(' ', ""), $test);
            )*)*
            suite.run()
        }
    };
}
