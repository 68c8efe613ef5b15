//! OIDC client assertion given directly as a token (ARM_OIDC_TOKEN).

use azure_core::http::ClientMethodOptions;
use azure_identity::ClientAssertion;

use crate::secret::Secret;

#[derive(Debug)]
pub(crate) struct StaticAssertion(pub(crate) Secret);

#[async_trait::async_trait]
impl ClientAssertion for StaticAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.0.expose().to_owned())
    }
}
