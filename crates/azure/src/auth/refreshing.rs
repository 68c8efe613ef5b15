//! Token cache in front of an `azure_identity` credential, with a forced refresh.
//!
//! `azure_identity`'s own caches cannot be invalidated (and `AzureCliCredential`
//! has none), so a forced refresh rebuilds the inner credential from its factory,
//! which starts with an empty cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};

use crate::secret::Secret;

type Factory = dyn Fn() -> azure_core::Result<Arc<dyn TokenCredential>> + Send + Sync;

/// Marker put in `TokenRequestOptions.method_options.context` to ask a
/// [`RefreshingCredential`] for a new token. Other credentials ignore it.
#[derive(Clone, Debug)]
pub struct ForceRefresh {
    /// The token the service rejected. If the cache already holds a different
    /// one, another request refreshed first and that token is returned.
    pub rejected: Option<Secret>,
}

impl ForceRefresh {
    /// Options for `get_token` that carry this marker.
    pub fn options(rejected: Option<&str>) -> TokenRequestOptions<'static> {
        let mut options = TokenRequestOptions::default();
        options.method_options.context.insert(ForceRefresh {
            rejected: rejected.map(Secret::new),
        });
        options
    }
}

struct Cached {
    token: AccessToken,
    refresh_at: OffsetDateTime,
}

/// Caches tokens per scope set and refreshes them before they expire: 5 minutes
/// early, or at half-life for short-lived tokens.
pub struct RefreshingCredential {
    name: &'static str,
    factory: Box<Factory>,
    inner: Mutex<Arc<dyn TokenCredential>>,
    // Held across the fetch so concurrent callers wait for one refresh.
    cache: tokio::sync::Mutex<HashMap<String, Cached>>,
}

impl fmt::Debug for RefreshingCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingCredential")
            .field("method", &self.name)
            .finish_non_exhaustive()
    }
}

impl RefreshingCredential {
    /// Builds the inner credential once now (so configuration errors surface
    /// early) and again on every forced refresh.
    pub fn new(
        name: &'static str,
        factory: impl Fn() -> azure_core::Result<Arc<dyn TokenCredential>> + Send + Sync + 'static,
    ) -> azure_core::Result<Arc<Self>> {
        let inner = factory()?;
        Ok(Arc::new(Self {
            name,
            factory: Box::new(factory),
            inner: Mutex::new(inner),
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// Which sign-in method this credential uses, e.g. "client secret".
    pub fn method(&self) -> &'static str {
        self.name
    }

    fn inner(&self) -> Arc<dyn TokenCredential> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn refresh_at(token: &AccessToken, now: OffsetDateTime) -> OffsetDateTime {
    let lifetime = token.expires_on - now;
    let margin = std::cmp::min(Duration::minutes(5), lifetime / 2);
    token.expires_on - margin.max(Duration::ZERO)
}

#[async_trait::async_trait]
impl TokenCredential for RefreshingCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let force = options
            .as_ref()
            .and_then(|o| o.method_options.context.value::<ForceRefresh>())
            .cloned();
        let key = scopes.join(" ");
        let mut cache = self.cache.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(cached) = cache.get(&key) {
            let fresh = match &force {
                None => now < cached.refresh_at,
                Some(ForceRefresh { rejected: Some(r) }) => {
                    r.expose() != cached.token.token.secret() && now < cached.token.expires_on
                }
                Some(ForceRefresh { rejected: None }) => false,
            };
            if fresh {
                return Ok(cached.token.clone());
            }
        }
        if force.is_some() {
            tracing::info!(
                method = self.name,
                "service rejected the access token; signing in again"
            );
            let rebuilt = (self.factory)()?;
            *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = rebuilt;
        }
        let token = self.inner().get_token(scopes, None).await?;
        tracing::debug!(method = self.name, expires_on = %token.expires_on, "acquired access token");
        let refresh_at = refresh_at(&token, now);
        cache.insert(
            key,
            Cached {
                token: token.clone(),
                refresh_at,
            },
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Like azure_identity's credentials: caches forever once fetched.
    #[derive(Debug)]
    struct Sticky {
        generation: usize,
        calls: Arc<AtomicUsize>,
        lifetime: Duration,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Sticky {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new(
                format!("gen{}-call{}", self.generation, n),
                OffsetDateTime::now_utc() + self.lifetime,
            ))
        }
    }

    fn cred(lifetime: Duration) -> (Arc<RefreshingCredential>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let builds = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let cred = RefreshingCredential::new("test", move || {
            let generation = builds.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(Sticky {
                generation,
                calls: c.clone(),
                lifetime,
            }) as Arc<dyn TokenCredential>)
        })
        .unwrap();
        (cred, calls)
    }

    #[tokio::test]
    async fn caches_until_refresh_window() {
        let (cred, calls) = cred(Duration::hours(1));
        let a = cred.get_token(&["s"], None).await.unwrap();
        let b = cred.get_token(&["s"], None).await.unwrap();
        assert_eq!(a.token.secret(), b.token.secret());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn short_lived_tokens_refresh_at_half_life() {
        let (cred, calls) = cred(Duration::milliseconds(200));
        cred.get_token(&["s"], None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        cred.get_token(&["s"], None).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn forced_refresh_rebuilds_once_for_the_same_rejected_token() {
        let (cred, _) = cred(Duration::hours(1));
        let first = cred.get_token(&["s"], None).await.unwrap();
        assert!(first.token.secret().starts_with("gen0"));
        let opts = ForceRefresh::options(Some(first.token.secret()));
        let second = cred.get_token(&["s"], Some(opts)).await.unwrap();
        assert!(
            second.token.secret().starts_with("gen1"),
            "{}",
            second.token.secret()
        );
        // A second request that saw the same stale token gets the new one, no rebuild.
        let opts = ForceRefresh::options(Some(first.token.secret()));
        let third = cred.get_token(&["s"], Some(opts)).await.unwrap();
        assert_eq!(third.token.secret(), second.token.secret());
    }
}
