//! The HTTP client the relying party talks to upstream providers with: no redirects
//! (one could lead from the https URL we checked to plain http, as for SAML metadata),
//! a time limit, and a size limit on what it reads (a discovery document, a JWKS or
//! a token response is a few KiB; nothing upstream can make the hub buffer more).

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

const MAX_BODY_BYTES: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the response is over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Response(String),
}

#[derive(Clone)]
pub struct UpstreamHttp(reqwest::Client);

impl UpstreamHttp {
    pub fn new() -> Result<UpstreamHttp, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map(UpstreamHttp)
    }
}

impl<'c> AsyncHttpClient<'c> for UpstreamHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let mut response = self.0.execute(request).await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(body)
                .map_err(|e| HttpError::Response(e.to_string()))
        })
    }
}
