//! Where the `redis-server` binary is, and what to tell someone who has none.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The variable that names the binary to use.
pub const SERVER_VAR: &str = "REDIS_SERVER";

/// The variable under which a missing `redis-server` fails the tests that need one
/// instead of skipping them (`.ci/run` sets it).
pub const REQUIRE_VAR: &str = "DOGPILE_REQUIRE_REDIS";

/// Where package managers put `redis-server`, looked at after `PATH`.
const USUAL_DIRS: [&str; 6] = [
    "/usr/bin",
    "/usr/local/bin",
    "/opt/homebrew/bin",
    "/usr/sbin",
    "/usr/local/sbin",
    "/snap/bin",
];

/// Whether `DOGPILE_REQUIRE_REDIS=1` is set.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The `redis-server` to run: `$REDIS_SERVER` if set, else the first one on `PATH`,
/// else the first one in the usual install directories, that runs (`--version`);
/// decided once per process. `Err` says what was tried and how to get one.
pub fn server_binary() -> Result<&'static Path, &'static str> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(search)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

fn search() -> Result<PathBuf, String> {
    if let Some(named) = std::env::var_os(SERVER_VAR) {
        let named = PathBuf::from(named);
        return if runs(&named) {
            Ok(named)
        } else {
            Err(format!(
                "{SERVER_VAR}={} does not run: `{} --version` failed.\n{}",
                named.display(),
                named.display(),
                how_to_install()
            ))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let candidates = on_path
        .iter()
        .map(PathBuf::as_path)
        .chain(USUAL_DIRS.iter().map(Path::new))
        .map(|dir| dir.join("redis-server"));
    for candidate in candidates {
        if candidate.is_file() && runs(&candidate) {
            return Ok(candidate);
        }
    }
    Err(format!(
        "No redis-server found: {SERVER_VAR} is not set, and none that runs is on PATH \
         nor in {}.\n{}",
        USUAL_DIRS.join(", "),
        how_to_install()
    ))
}

/// Whether `binary --version` runs and succeeds.
fn runs(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The ways to get a `redis-server` the tests can use.
pub fn how_to_install() -> String {
    format!(
        "To run them, install redis-server:\n\
         \x20   Debian/Ubuntu:  sudo apt-get install redis-server\n\
         \x20   macOS:          brew install redis\n\
         or name one:        {SERVER_VAR}=/path/to/redis-server cargo test\n\
         ({REQUIRE_VAR}=1 makes a missing redis-server fail these tests instead of \
         skipping them; CI sets it.)"
    )
}
