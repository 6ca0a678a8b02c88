//! `SDK-HMAC-SHA256` request signing, byte for byte as the Huawei Cloud SDK
//! (`huaweicloudsdkcore.signer.Signer`) does it, and its strict verification.
//!
//! The canonical request is
//! `METHOD \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash`:
//! - the URI path is percent-decoded, split on `/`, each segment re-encoded
//!   (`quote(segment, safe='~')`) and a trailing `/` added;
//! - query pairs are sorted by (key, value) and encoded the same way;
//! - canonical headers are `name:value\n` for each signed header, names
//!   lowercased, values trimmed; the SDK signs every header whose name has no `_`;
//! - the payload hash is the hex SHA-256 of the body, the value of
//!   `X-Sdk-Content-Sha256` when present (e.g. `UNSIGNED-PAYLOAD`), or the hash
//!   of nothing for an empty body.
//!
//! The string to sign is `SDK-HMAC-SHA256 \n X-Sdk-Date \n hex(sha256(canonical request))`,
//! the signature the hex HMAC-SHA256 of it under the secret key, sent as
//! `Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`.
//!
//! Verification is as strict as SDK-made requests allow: `host` and
//! `x-sdk-date` must be signed, every signed header must be present exactly
//! once, the date must lie within [`MAX_CLOCK_SKEW_MS`] of now, and a body must
//! be covered by the signature (`UNSIGNED-PAYLOAD` is refused, a declared
//! content hash must match the body).

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The signing algorithm's name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The header carrying the signing time.
pub const DATE_HEADER: &str = "X-Sdk-Date";
/// The header that, when present, replaces the body hash in the canonical request.
pub const CONTENT_HASH_HEADER: &str = "X-Sdk-Content-Sha256";
/// The value of [`CONTENT_HASH_HEADER`] for bodies the signature does not cover.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far the signing time may be from the verifier's clock, either way.
pub const MAX_CLOCK_SKEW_MS: i64 = 15 * 60 * 1000;

const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const EMPTY_BODY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Headers every verified signature must cover.
const REQUIRED_SIGNED_HEADERS: [&str; 2] = ["host", "x-sdk-date"];

/// Python's `urllib.parse.quote(s, safe='~')`: everything but `A-Za-z0-9_.-~` is percent-encoded (UTF-8, upper hex).
const SDK_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~');

/// A request as the signer and the verifier see it, with no HTTP library types.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method, any case (it is uppercased).
    pub method: &'a str,
    /// The path as sent on the wire (percent-encoded or not; it is decoded first).
    pub path: &'a str,
    /// The decoded query pairs, in any order, repeated keys allowed.
    pub query: &'a [(String, String)],
    /// Every header of the request, names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the request has no {DATE_HEADER} header")]
    MissingDate,
    #[error("header {0} appears more than once")]
    DuplicateHeader(String),
}

/// Why a signature was refused. Display texts are for logs; they name the exact cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no Authorization header")]
    MissingAuthorization,
    #[error("the Authorization header is malformed: {0}")]
    MalformedAuthorization(&'static str),
    #[error("the signing algorithm is not {ALGORITHM}")]
    UnsupportedAlgorithm,
    #[error("header {0} must be signed")]
    RequiredHeaderNotSigned(&'static str),
    #[error("signed header {0} is missing from the request")]
    SignedHeaderMissing(String),
    #[error("header {0} appears more than once")]
    DuplicateHeader(String),
    #[error("the {DATE_HEADER} header is not of the form YYYYMMDDTHHMMSSZ")]
    MalformedDate,
    #[error("the signing time is more than 15 minutes away from the server's clock")]
    ClockSkew,
    #[error("the request body is not covered by the signature (UNSIGNED-PAYLOAD)")]
    UnsignedPayload,
    #[error("the {CONTENT_HASH_HEADER} header does not match the body")]
    ContentHashMismatch,
    #[error("the signature does not match")]
    SignatureMismatch,
}

/// The parsed `Authorization` header of an `SDK-HMAC-SHA256` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    /// Lowercase header names, strictly ascending.
    pub signed_headers: Vec<String>,
    /// 64 lowercase hex digits.
    pub signature: String,
}

impl Authorization {
    /// Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`
    /// exactly as the SDK writes it: parts in this order, `, ` between them,
    /// header names lowercase, sorted and unique, the signature 64 lowercase hex digits.
    pub fn parse(value: &str) -> Result<Authorization, SignatureError> {
        use SignatureError::MalformedAuthorization as Malformed;
        let (algorithm, credentials) =
            value.split_once(' ').ok_or(Malformed("expected an algorithm and credentials"))?;
        if algorithm != ALGORITHM {
            return Err(SignatureError::UnsupportedAlgorithm);
        }
        let mut parts = credentials.split(", ");
        let mut field = |name: &'static str, error: &'static str| {
            parts.next().and_then(|part| part.strip_prefix(name)).ok_or(Malformed(error))
        };
        let access_key = field("Access=", "expected Access=")?;
        let signed_headers = field("SignedHeaders=", "expected SignedHeaders= after Access")?;
        let signature = field("Signature=", "expected Signature= after SignedHeaders")?;
        if parts.next().is_some() {
            return Err(Malformed("unexpected text after Signature"));
        }
        if access_key.is_empty() || !access_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Malformed("the access key must be alphanumeric"));
        }
        let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
        let names_valid = signed_headers.iter().all(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if !names_valid {
            return Err(Malformed("signed header names must be lowercase tokens"));
        }
        if !signed_headers.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(Malformed("signed header names must be sorted and unique"));
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(Malformed("the signature must be 64 lowercase hex digits"));
        }
        Ok(Authorization { access_key: access_key.to_owned(), signed_headers, signature: signature.to_owned() })
    }
}

impl std::fmt::Display for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{ALGORITHM} Access={}, SignedHeaders={}, Signature={}",
            self.access_key,
            self.signed_headers.join(";"),
            self.signature
        )
    }
}

/// Formats a time (ms since the epoch) as an `X-Sdk-Date` value.
pub fn format_sdk_date(time_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(time_ms).unwrap_or_default().format(DATE_FORMAT).to_string()
}

/// Parses an `X-Sdk-Date` value strictly (exactly `YYYYMMDDTHHMMSSZ`) into ms since the epoch.
pub fn parse_sdk_date(value: &str) -> Option<i64> {
    let shape_ok = value.len() == 16
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    NaiveDateTime::parse_from_str(value, DATE_FORMAT).ok().map(|t| t.and_utc().timestamp_millis())
}

/// Adds the headers `Signer.sign` adds before signing: `X-Sdk-Content-Sha256:
/// UNSIGNED-PAYLOAD` when the content type is neither JSON nor BSON,
/// `X-Sdk-Date` (from `now_ms`) unless present, and `Host` unless present.
pub fn complete_headers(headers: &mut Vec<(String, String)>, host: &str, now_ms: i64) {
    let content_type = header(headers, "content-type");
    if content_type
        .is_some_and(|t| !t.is_empty() && !t.starts_with("application/json") && !t.starts_with("application/bson"))
    {
        headers.push((CONTENT_HASH_HEADER.to_owned(), UNSIGNED_PAYLOAD.to_owned()));
    }
    if header(headers, DATE_HEADER).is_none() {
        headers.push((DATE_HEADER.to_owned(), format_sdk_date(now_ms)));
    }
    if header(headers, "host").is_none() {
        headers.push(("Host".to_owned(), host.to_owned()));
    }
}

/// Signs a request whose headers are complete (see [`complete_headers`]) and
/// returns the `Authorization` header value. Like the SDK, it signs every
/// header whose name contains no `_`.
pub fn sign_request(access_key: &str, secret_key: &str, request: &SignedRequest<'_>) -> Result<String, SignError> {
    let mut signed_headers: Vec<String> = request
        .headers
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    signed_headers.sort();
    if let Some(pair) = signed_headers.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(SignError::DuplicateHeader(pair[0].clone()));
    }
    let date = header(request.headers, DATE_HEADER).ok_or(SignError::MissingDate)?;
    let canonical_headers = canonical_headers(request.headers, &signed_headers).map_err(SignError::DuplicateHeader)?;
    let payload_hash = payload_hash(request);
    let canonical = canonical_request(request, &canonical_headers, &signed_headers, &payload_hash);
    let signature = signature(secret_key.as_bytes(), &string_to_sign(python_strip(date), &canonical));
    Ok(Authorization { access_key: access_key.to_owned(), signed_headers, signature }.to_string())
}

/// Checks the signature of `request` against `authorization` (already parsed,
/// its access key resolved to `secret_key`) at `now_ms`.
pub fn verify(
    request: &SignedRequest<'_>,
    authorization: &Authorization,
    secret_key: &[u8],
    now_ms: i64,
) -> Result<(), SignatureError> {
    for required in REQUIRED_SIGNED_HEADERS {
        if authorization.signed_headers.binary_search_by(|name| name.as_str().cmp(required)).is_err() {
            return Err(SignatureError::RequiredHeaderNotSigned(required));
        }
    }
    let date =
        unique_header(request.headers, DATE_HEADER)?.ok_or(SignatureError::SignedHeaderMissing("x-sdk-date".into()))?;
    let date = python_strip(date);
    let signed_at = parse_sdk_date(date).ok_or(SignatureError::MalformedDate)?;
    if (now_ms - signed_at).abs() > MAX_CLOCK_SKEW_MS {
        return Err(SignatureError::ClockSkew);
    }
    if !request.body.is_empty() {
        if let Some(declared) = unique_header(request.headers, CONTENT_HASH_HEADER)? {
            check_declared_content_hash(python_strip(declared), request.body, authorization)?;
        }
    }
    for name in &authorization.signed_headers {
        if unique_header(request.headers, name)?.is_none() {
            return Err(SignatureError::SignedHeaderMissing(name.clone()));
        }
    }
    let canonical_headers =
        canonical_headers(request.headers, &authorization.signed_headers).map_err(SignatureError::DuplicateHeader)?;
    let canonical =
        canonical_request(request, &canonical_headers, &authorization.signed_headers, &payload_hash(request));
    let expected = signature(secret_key, &string_to_sign(date, &canonical));
    if bool::from(expected.as_bytes().ct_eq(authorization.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::SignatureMismatch)
    }
}

/// A declared content hash must be signed, must not be `UNSIGNED-PAYLOAD`, and must be the body's hash.
fn check_declared_content_hash(
    declared: &str,
    body: &[u8],
    authorization: &Authorization,
) -> Result<(), SignatureError> {
    if declared == UNSIGNED_PAYLOAD {
        return Err(SignatureError::UnsignedPayload);
    }
    if !authorization.signed_headers.iter().any(|name| name.eq_ignore_ascii_case(CONTENT_HASH_HEADER)) {
        return Err(SignatureError::RequiredHeaderNotSigned("x-sdk-content-sha256"));
    }
    if declared != hex::encode(Sha256::digest(body)) {
        return Err(SignatureError::ContentHashMismatch);
    }
    Ok(())
}

/// The SDK's canonical query string: pairs sorted by (key, value), each side
/// encoded like `quote(s, safe='~')`, joined with `&`. The SDK also sends this
/// string as the request's query.
pub fn canonical_query_string(query: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = query.iter().collect();
    pairs.sort();
    let encoded: Vec<String> =
        pairs.iter().map(|(key, value)| format!("{}={}", sdk_url_encode(key), sdk_url_encode(value))).collect();
    encoded.join("&")
}

/// Decodes a raw query string (`a=1&b=x%20y`) into pairs the way HTML forms
/// do (`+` is a space, `%XX` a byte, invalid UTF-8 replaced), keeping order and
/// repeats. The server verifies signatures over, and acts on, these pairs.
pub fn parse_query_string(raw: &str) -> Vec<(String, String)> {
    let decode = |text: &str| percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned();
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// The SDK's canonical URI: the path percent-decoded, split on `/`, each
/// segment encoded, rejoined, with a trailing `/`.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let segments: Vec<String> = decoded.split('/').map(sdk_url_encode).collect();
    let mut uri = segments.join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

fn sdk_url_encode(text: &str) -> String {
    utf8_percent_encode(text, SDK_ENCODE_SET).to_string()
}

fn canonical_request(
    request: &SignedRequest<'_>,
    canonical_headers: &str,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method.to_uppercase(),
        canonical_uri(request.path),
        canonical_query_string(request.query),
        canonical_headers,
        signed_headers.join(";"),
        payload_hash
    )
}

/// `name:value\n` for each signed header (values trimmed); the error names a header present more than once.
fn canonical_headers(headers: &[(String, String)], signed_headers: &[String]) -> Result<String, String> {
    let mut canonical = String::new();
    for name in signed_headers {
        let mut values = headers.iter().filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name));
        let value = values.next().map_or("", |(_, value)| python_strip(value));
        if values.next().is_some() {
            return Err(name.clone());
        }
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    Ok(canonical)
}

fn payload_hash(request: &SignedRequest<'_>) -> String {
    if request.body.is_empty() {
        return EMPTY_BODY_HASH.to_owned();
    }
    match header(request.headers, CONTENT_HASH_HEADER).map(python_strip) {
        Some(declared) if !declared.is_empty() => declared.to_owned(),
        _ => hex::encode(Sha256::digest(request.body)),
    }
}

fn string_to_sign(date: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{date}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

fn signature(secret_key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The first value of a header, by case-insensitive name.
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(candidate, _)| candidate.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

/// The value of a header that must not be repeated.
fn unique_header<'h>(headers: &'h [(String, String)], name: &str) -> Result<Option<&'h str>, SignatureError> {
    let mut values = headers.iter().filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name));
    let first = values.next().map(|(_, value)| value.as_str());
    match values.next() {
        Some(_) => Err(SignatureError::DuplicateHeader(name.to_ascii_lowercase())),
        None => Ok(first),
    }
}

/// Python's `str.strip()`: Unicode whitespace plus the separators `\x1c`-`\x1f`.
fn python_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uri_encodes_each_segment_and_adds_trailing_slash() {
        let cases = [
            ("/", "/"),
            ("/v3/p/traces", "/v3/p/traces/"),
            ("/v3/p/traces/", "/v3/p/traces/"),
            ("/a%20b/c+d", "/a%20b/c%2Bd/"),
            ("/a%2Fb", "/a/b/"),
            ("/%E4%BD%A0", "/%E4%BD%A0/"),
            ("/x~y_z.-!*'()", "/x~y_z.-%21%2A%27%28%29/"),
        ];
        for (path, expected) in cases {
            assert_eq!(canonical_uri(path), expected, "path {path}");
        }
    }

    #[test]
    fn canonical_query_sorts_by_key_then_value() {
        let query: Vec<(String, String)> = [("b", "2"), ("a", "z"), ("a", "y y"), ("c", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(canonical_query_string(&query), "a=y%20y&a=z&b=2&c=");
        assert_eq!(canonical_query_string(&[]), "");
    }

    #[test]
    fn query_string_parsing_is_the_inverse_of_canonical_encoding() {
        let pairs = parse_query_string("a=%26%3D%2B%2F%3F&a=x%20y&b=2&e=&flag&&plus=a+b&%C3%BC=%C3%A9~%2A");
        let expected =
            [("a", "&=+/?"), ("a", "x y"), ("b", "2"), ("e", ""), ("flag", ""), ("plus", "a b"), ("ü", "é~*")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert_eq!(parse_query_string(""), []);
    }

    #[test]
    fn sdk_date_parsing_is_strict() {
        assert_eq!(parse_sdk_date("19700101T000001Z"), Some(1000));
        assert_eq!(format_sdk_date(1000), "19700101T000001Z");
        for bad in
            ["1970010T000001Z", "19700101T000001", "19700101 000001Z", "19701301T000000Z", "+9700101T000000Z", ""]
        {
            assert_eq!(parse_sdk_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn authorization_parse_round_trips_and_rejects_variants() {
        let sig = "a".repeat(64);
        let text = format!("SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature={sig}");
        let parsed = Authorization::parse(&text).unwrap();
        assert_eq!(parsed.to_string(), text);
        let bad = [
            (
                format!("SDK-HMAC-SM3 Access=AK1, SignedHeaders=host, Signature={sig}"),
                SignatureError::UnsupportedAlgorithm,
            ),
            (
                "SDK-HMAC-SHA256".to_owned(),
                SignatureError::MalformedAuthorization("expected an algorithm and credentials"),
            ),
            (
                format!("SDK-HMAC-SHA256 SignedHeaders=host, Access=AK1, Signature={sig}"),
                SignatureError::MalformedAuthorization("expected Access="),
            ),
            (
                format!("SDK-HMAC-SHA256 Access=AK1,SignedHeaders=host, Signature={sig}"),
                SignatureError::MalformedAuthorization("expected SignedHeaders= after Access"),
            ),
            (
                format!("SDK-HMAC-SHA256 Access=AK-1, SignedHeaders=host, Signature={sig}"),
                SignatureError::MalformedAuthorization("the access key must be alphanumeric"),
            ),
            (
                format!("SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date;host, Signature={sig}"),
                SignatureError::MalformedAuthorization("signed header names must be sorted and unique"),
            ),
            (
                format!("SDK-HMAC-SHA256 Access=AK1, SignedHeaders=Host, Signature={sig}"),
                SignatureError::MalformedAuthorization("signed header names must be lowercase tokens"),
            ),
            (
                format!("SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host, Signature={}", "A".repeat(64)),
                SignatureError::MalformedAuthorization("the signature must be 64 lowercase hex digits"),
            ),
            (
                format!("SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host, Signature={sig}, Extra=1"),
                SignatureError::MalformedAuthorization("unexpected text after Signature"),
            ),
        ];
        for (text, expected) in bad {
            assert_eq!(Authorization::parse(&text), Err(expected), "{text}");
        }
    }

    #[test]
    fn complete_headers_adds_what_the_sdk_adds() {
        let mut headers = vec![("Content-Type".to_owned(), "application/octet-stream".to_owned())];
        complete_headers(&mut headers, "h:1", 0);
        assert_eq!(
            headers,
            [
                ("Content-Type", "application/octet-stream"),
                (CONTENT_HASH_HEADER, UNSIGNED_PAYLOAD),
                (DATE_HEADER, "19700101T000000Z"),
                ("Host", "h:1")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let mut json = vec![
            ("content-type".to_owned(), "application/json;charset=UTF-8".to_owned()),
            ("x-sdk-date".to_owned(), "20240101T000000Z".to_owned()),
            ("host".to_owned(), "given".to_owned()),
        ];
        let before = json.clone();
        complete_headers(&mut json, "other", 0);
        assert_eq!(json, before);
    }
}
