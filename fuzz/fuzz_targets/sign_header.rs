//! SDK-HMAC-SHA256 in `cts_iam::sign`, as the server's authentication layer calls it. The input is a request
//! in HTTP's shape: the `Authorization` value on the first line, `METHOD /path?query` on the second, then
//! `Name: value` header lines (those HTTP cannot carry are left out, as they never reach the server), an empty
//! line and the body. The header is parsed, the `X-Sdk-Date` read and the
//! signature verified (secret key [`SECRET_KEY`], clock [`NOW_MS`]); then the same request, completed and
//! signed by `sign_request` as the Rust client does, is verified. Invariants: nothing panics; a parsed header
//! prints back to itself; a date reads as whole seconds and a formatted date reads back; a request signed by
//! `sign_request` verifies unless its own headers carry a bad date or content hash.
#![no_main]

use cts_fuzz::NOW_MS;
use cts_iam::sign::{
    complete_headers, format_sdk_date, parse_query_string, parse_sdk_date, sign_request, verify, Authorization,
    SignatureError, SignedRequest,
};
use libfuzzer_sys::fuzz_target;

const ACCESS_KEY: &str = "AK0123456789";
const SECRET_KEY: &str = "fuzz-secret-key";

/// The request an input describes, and the `Authorization` value it carries.
struct Input {
    authorization: String,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Input {
    fn read(data: &[u8]) -> Input {
        let (head, body) = match data.windows(2).position(|pair| pair == b"\n\n") {
            Some(end) => (&data[..end], &data[end + 2..]),
            None => (data, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n');
        let authorization = lines.next().unwrap_or_default().to_owned();
        let (method, target) = lines.next().unwrap_or_default().split_once(' ').unwrap_or_default();
        let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        let headers = lines
            .map(|line| line.split_once(':').unwrap_or((line, "")))
            .filter(|(name, value)| is_header_name(name) && is_header_value(value))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Input {
            authorization,
            method: method.to_owned(),
            path: path.to_owned(),
            query: parse_query_string(raw_query),
            headers,
            body: body.to_vec(),
        }
    }

    fn request<'a>(&'a self, headers: &'a [(String, String)]) -> SignedRequest<'a> {
        SignedRequest { method: &self.method, path: &self.path, query: &self.query, headers, body: &self.body }
    }
}

/// A header the server can receive at all: the HTTP layer admits only token names (RFC 9110 5.6.2) and values
/// without control characters other than tab (and the server leaves out values that are not UTF-8).
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fuzz_target!(|data: &[u8]| {
    let input = Input::read(data);
    if let Ok(authorization) = Authorization::parse(&input.authorization) {
        assert_eq!(Authorization::parse(&authorization.to_string()), Ok(authorization.clone()));
        let _ = verify(&input.request(&input.headers), &authorization, SECRET_KEY.as_bytes(), NOW_MS);
    }
    for (_, value) in &input.headers {
        if let Some(signed_at) = parse_sdk_date(value.trim()) {
            assert_eq!(signed_at.rem_euclid(1000), 0, "{value:?} read as {signed_at}");
            assert_eq!(parse_sdk_date(&format_sdk_date(signed_at)), Some(signed_at), "{value:?}");
        }
    }

    let mut headers = input.headers.clone();
    complete_headers(&mut headers, "cts.example.com", NOW_MS);
    let Ok(signed) = sign_request(ACCESS_KEY, SECRET_KEY, &input.request(&headers)) else { return };
    // Header names the SDK never sends (not lowercase tokens once lowercased) give an Authorization the
    // server refuses to parse: nothing to verify.
    let Ok(authorization) = Authorization::parse(&signed) else { return };
    match verify(&input.request(&headers), &authorization, SECRET_KEY.as_bytes(), NOW_MS) {
        Ok(())
        | Err(SignatureError::MalformedDate)
        | Err(SignatureError::ClockSkew)
        | Err(SignatureError::UnsignedPayload)
        | Err(SignatureError::ContentHashMismatch) => {}
        Err(error) => panic!("a request signed by sign_request fails verification: {error}"),
    }
});
