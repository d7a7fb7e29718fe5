//! The status page at `/`: one self-contained HTML document (`page.html`, compiled in) that
//! reads and acts through the same `/v1` routes as filc, with the browser's own credentials.
//!
//! What keeps it safe to open: every response carries a Content-Security-Policy whose only
//! script and style are the page's own, by a nonce drawn per response, so no inline handler
//! or injected element can run even if text were ever put in as HTML (the page puts every
//! text in with `textContent`); it may talk to its own origin only, be framed by nobody and
//! submit no form. State changes from it are `fetch` POSTs with a JSON body, which
//! [`super::server::cross_site`] requires of every browser-reachable listener.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};

/// The document, with `{{NONCE}}` where the nonce goes.
const PAGE: &str = include_str!("page.html");

/// The page's response, with a fresh nonce and the headers that confine it.
pub fn response(head_only: bool) -> Response<Full<Bytes>> {
    let nonce = nonce();
    let body = if head_only {
        Bytes::new()
    } else {
        Bytes::from(PAGE.replace("{{NONCE}}", &nonce))
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, policy(&nonce))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(body))
        .expect("static response parts are valid")
}

/// The Content-Security-Policy for a response with `nonce`.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// 16 random bytes, hex: a nonce no page elsewhere can guess.
fn nonce() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // No /dev/urandom: still unique per response (the policy then only stops injected
        // markup, which the page never makes anyway).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_and_style_carries_the_nonce_and_nothing_else_runs() {
        let resp = response(false);
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .unwrap()
            .to_string();
        assert_eq!(nonce.len(), 32);
        assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe"));
        let html = PAGE.replace("{{NONCE}}", &nonce);
        for tag in ["<script", "<style"] {
            let n = html.matches(tag).count();
            let with = html.matches(&format!("{tag} nonce=\"{nonce}\"")).count();
            assert!(
                n >= 1 && n == with,
                "{tag}: {n} in all, {with} with the nonce"
            );
        }
        // No inline handlers and no HTML insertion anywhere in the page's own code.
        for bad in [
            "onclick=",
            "onload=",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!PAGE.contains(bad), "{bad}");
        }
        // A second response draws another nonce.
        assert_ne!(
            policy(&nonce),
            response(false).headers()[header::CONTENT_SECURITY_POLICY]
        );
    }

    #[test]
    fn head_has_the_headers_and_no_body() {
        let resp = response(true);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(resp.headers()[header::X_FRAME_OPTIONS], "DENY");
    }
}
