//! The `#[dogpile]` attribute's rejected inputs: every one has a case under `ui/fail/`
//! with the exact error rustc shows (`.stderr`). The accepted inputs are ordinary tests
//! (`tests/pass/`), so that trybuild only checks its cases: no case is built or run, and
//! the dependencies are checked, not compiled.
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
            }
        }
        Err(_) => t.compile_fail("tests/ui/fail/*.rs"),
    }
}
