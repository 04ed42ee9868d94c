//! A browser played by reqwest with a hand-kept cookie jar: no automatic redirects, so
//! every hop of a federated sign-in (to the IdP, back to the hub) is visible in a test.
//! Cookies are kept by name only (every peer here is on 127.0.0.1, where cookies do
//! not tell ports apart anyway).

use std::collections::BTreeMap;

pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            cookies: BTreeMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, r: reqwest::Response) -> Answer {
        for v in r.headers().get_all("set-cookie") {
            let s = v.to_str().unwrap_or_default();
            let (kv, _) = s.split_once(';').unwrap_or((s, ""));
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            if v.is_empty() || s.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Answer {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_string),
            body: r.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let r = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.keep(r).await
    }

    /// A same-site form POST (cookies go along).
    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let r = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.keep(r).await
    }

    /// A cross-site form POST (an IdP's auto-submitting form): SameSite=Lax cookies
    /// stay home, so none are sent.
    pub async fn post_cross_site(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let r = self
            .http
            .post(url)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.keep(r).await
    }

    /// The value of the form field `name` on the last page (e.g. the CSRF token).
    pub fn field(html: &str, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let at = html.find(&marker)? + marker.len();
        Some(html[at..at + html[at..].find('"')?].to_string())
    }
}

/// `location` made absolute against `base` when it is a path.
pub fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{base}{location}")
    }
}

/// RFC 3986 unreserved characters stay, everything else is %XX.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
