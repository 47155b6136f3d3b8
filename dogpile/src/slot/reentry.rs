//! Same-key re-entry detection (R9): which slots' creators run on this thread, so that
//! a creator asking for its own key panics instead of waiting for itself forever.

use crate::sync::thread_locals;
use std::cell::RefCell;
use std::future::Future;

/// Runs `start` and polls the future it returns as the creator of every slot in `ids`
/// at once (a batch's creator).
pub(super) async fn run_as_creator_of<F: Future>(
    ids: &[usize],
    start: impl FnOnce() -> F,
) -> F::Output {
    let scopes = || {
        ids.iter()
            .map(|&id| CreatorScope::enter(id))
            .collect::<Vec<_>>()
    };
    let create = {
        let _scopes = scopes();
        start()
    };
    let mut create = std::pin::pin!(create);
    std::future::poll_fn(|cx| {
        let _scopes = scopes();
        create.as_mut().poll(cx)
    })
    .await
}

thread_locals! {
    /// Controls whose creator is running on this thread, innermost last.
    static CREATING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Whether the creator of slot `id` runs on this thread.
pub(super) fn creating_here(id: usize) -> bool {
    CREATING.with(|c| c.borrow().contains(&id))
}

/// This thread runs the creator of slot `.0` while this lives.
pub(super) struct CreatorScope(usize);

impl CreatorScope {
    pub(super) fn enter(id: usize) -> Self {
        CREATING.with(|c| c.borrow_mut().push(id));
        CreatorScope(id)
    }
}

impl Drop for CreatorScope {
    fn drop(&mut self) {
        CREATING.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(at) = c.iter().rposition(|&id| id == self.0) {
                c.remove(at);
            }
        });
    }
}
