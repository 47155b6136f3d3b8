//! Associated fns without `self` in an `impl` block: marked `associated`, or recognised
//! by `Self` in their signature or body. The cache is reached through `{fn}_cache()`.
use dogpile::dogpile;
use std::sync::Arc;

struct Pool;

struct Repo;

impl Repo {
    #[dogpile(ttl = "1m", associated)]
    fn lookup(id: u64) -> Arc<str> {
        format!("row {id}").into()
    }

    /// Recognised by `Self` in the body.
    #[dogpile(ttl = "1m", capacity = 10)]
    pub fn doubled(id: u64) -> u64 {
        Self::twice(id)
    }

    /// Recognised by `Self` in an argument outside the key.
    #[dogpile(ttl = "1m", key = id)]
    fn from_repo(repo: &Self, id: u64) -> u64 {
        let _ = repo;
        id
    }

    #[dogpile(ttl = "1m", associated, name = titles)]
    async fn title(path: &str) -> Result<String, String> {
        Ok(path.to_uppercase())
    }

    #[dogpile(ttl = "1m", associated, background, key = id, skip_none)]
    fn row(db: Arc<Pool>, id: u64) -> Option<u64> {
        let _ = db;
        Some(id)
    }

    fn twice(id: u64) -> u64 {
        2 * id
    }
}

#[test]
fn runs() {
    assert_eq!(&*Repo::lookup(1), "row 1");
    assert_eq!(&*Repo::lookup(1), "row 1");
    assert_eq!(Repo::lookup_cache().stats().hits, 1);
    assert_eq!(&*Repo::lookup_no_cache(2), "row 2");
    assert_eq!(&*Repo::lookup_prime(2), "row 2");
    assert_eq!(Repo::lookup_cache().len(), 2);
    assert_eq!(Repo::doubled(4), 8);
    assert_eq!(Repo::doubled_cache().len(), 1);
    assert_eq!(Repo::from_repo(&Repo, 5), 5);
    assert!(Repo::from_repo_cache().contains_key(&5));
    let _ = Repo::title("a");
    let _ = Repo::titles();
    assert_eq!(Repo::row(Arc::new(Pool), 6), Some(6));
}
