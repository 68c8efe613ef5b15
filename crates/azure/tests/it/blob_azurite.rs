//! A private Azurite blob service per test (clara-testkit): 127.0.0.1, a free port, data in a
//! temp dir, killed on drop. Azurite comes from `make tools-azurite`
//! (`scripts/tools.sh azurite` → `.tools/node_modules/.bin/azurite-blob`);
//! when it is missing the tests fail and say so.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clara_azure::blob::{BlobClient, BlobCredential, BlobOptions};
use clara_azure::{RetryPolicy, Secret};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

pub use clara_testkit::{ACCOUNT, KEY};

/// The shared test Azurite, with blob-client conveniences.
pub struct Azurite {
    inner: clara_testkit::Azurite,
    pub port: u16,
}

impl Azurite {
    pub fn start() -> Self {
        let inner = clara_testkit::Azurite::start();
        let port = inner.port;
        Self { inner, port }
    }

    /// Path-style account URL, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn account_url(&self) -> Url {
        Url::parse(&self.inner.account_url()).unwrap()
    }

    pub fn shared_key() -> BlobCredential {
        BlobCredential::SharedKey {
            account: ACCOUNT.into(),
            key: Secret::new(KEY),
        }
    }

    pub fn client(&self, credential: BlobCredential, opts: BlobOptions) -> BlobClient {
        BlobClient::new(self.account_url(), credential, reqwest::Client::new(), opts).unwrap()
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

/// An account SAS (sv 2021-08-06, blob service, all resource types) signed
/// with the dev key, as the query string without `?`.
pub fn account_sas(permissions: &str) -> String {
    let (sv, ss, srt, se, spr) = (
        "2021-08-06",
        "b",
        "sco",
        "2099-01-01T00:00:00Z",
        "https,http",
    );
    // 2020-12-06+: account, sp, ss, srt, st, se, sip, spr, sv, ses, "".
    let string_to_sign =
        format!("{ACCOUNT}\n{permissions}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n\n");
    let mut mac = Hmac::<Sha256>::new_from_slice(&B64.decode(KEY).unwrap()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={permissions}&se={}&spr={}&sig={}",
        enc(se),
        enc(spr),
        enc(&sig)
    )
}
