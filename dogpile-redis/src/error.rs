use std::fmt;

/// An error from [`RedisTier::open`](crate::RedisTier::open) or from a call to Redis.
///
/// Never carries the URL's password.
///
/// ```
/// let err = dogpile_redis::RedisTier::open("http://cache:6379").unwrap_err();
/// assert!(err.to_string().starts_with("invalid Redis URL"), "{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not a Redis URL (`redis://[user:pass@]host[:port][/db]`,
    /// `rediss://...` with the `tls` feature, or `redis+unix:///path`).
    InvalidUrl(String),
    /// The root certificate authority given to
    /// [`RedisTier::open_with_root_ca`](crate::RedisTier::open_with_root_ca) is not one
    /// or more PEM certificates.
    #[cfg(feature = "tls")]
    InvalidRootCa(String),
    /// A Redis call failed, or its deadline passed (F7).
    Redis(redis::RedisError),
    /// A recent call failed to reach Redis: calls fail at once, without waiting for a
    /// deadline, until a short back-off has passed (F7).
    Unavailable,
    /// A key or value could not be encoded.
    Encode(String),
    /// Redis answered something this crate's scripts never return.
    Protocol(String),
    /// Redis refuses this tier's notification subscription (an ACL user without the
    /// channel, `resetchannels`): values are shared, but invalidate and remove made by
    /// other processes do not reach this one (F6).
    Notifications(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(why) => write!(f, "invalid Redis URL: {why}"),
            #[cfg(feature = "tls")]
            Error::InvalidRootCa(why) => write!(f, "invalid root certificate authority: {why}"),
            Error::Redis(err) => write!(f, "Redis call failed: {err}"),
            Error::Unavailable => f.write_str("Redis is unavailable (backing off after a failure)"),
            Error::Encode(why) => write!(f, "cannot encode for Redis: {why}"),
            Error::Protocol(why) => write!(f, "unexpected answer from Redis: {why}"),
            Error::Notifications(why) => write!(
                f,
                "Redis refuses the notification subscription, so invalidate and remove \
                 elsewhere do not reach this process: {why}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis(err) => Some(err),
            _ => None,
        }
    }
}

impl Error {
    /// The same failure again, for each key of a batch that it failed.
    pub(crate) fn copy(&self) -> Error {
        match self {
            Error::Redis(err) => Error::Redis(err.clone()),
            Error::Unavailable => Error::Unavailable,
            other => Error::Protocol(other.to_string()),
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        Error::Redis(err)
    }
}

impl From<Error> for dogpile::TierError {
    fn from(err: Error) -> Self {
        dogpile::TierError::new(err)
    }
}
