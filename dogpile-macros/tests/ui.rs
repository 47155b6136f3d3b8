//! The `#[dogpile]` attribute's compile-time behaviour: every rejected input has a
//! case under `ui/fail/` with the exact error rustc shows (`.stderr`), and every
//! option has a case under `ui/pass/` that compiles and runs.
//!
//! Regenerate the `.stderr` files after changing a message with
//! `TRYBUILD=overwrite cargo test -p dogpile-macros --test ui`, then read the diff.
//! `UI=key,name` runs only the cases whose file name contains `key` or `name`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    match std::env::var("UI") {
        Ok(filters) => {
            for filter in filters.split(',') {
                t.compile_fail(format!("tests/ui/fail/*{filter}*.rs"));
                t.pass(format!("tests/ui/pass/*{filter}*.rs"));
            }
        }
        Err(_) => {
            t.compile_fail("tests/ui/fail/*.rs");
            t.pass("tests/ui/pass/*.rs");
        }
    }
}
