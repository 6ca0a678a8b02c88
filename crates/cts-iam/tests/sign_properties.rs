//! Properties of signing and verification: a signed request verifies; any
//! single-byte change to what the signature covers makes it fail.

use cts_iam::sign::{complete_headers, sign_request, verify, Authorization, SignatureError, SignedRequest};
use proptest::prelude::*;

const NOW_MS: i64 = 1_700_000_000_000;
const SECRET_KEY: &str = "0123456789abcdefghijABCDEFGHIJ0123456789";

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    /// Completes and signs the request like a client, returning the parsed authorization.
    fn sign(&mut self) -> Authorization {
        complete_headers(&mut self.headers, "cts.example:8080", NOW_MS);
        let value = sign_request("AK0123456789", SECRET_KEY, &self.signed()).unwrap();
        Authorization::parse(&value).unwrap()
    }

    fn verify(&self, authorization: &Authorization) -> Result<(), SignatureError> {
        verify(&self.signed(), authorization, SECRET_KEY.as_bytes(), NOW_MS + 1000)
    }
}

fn request() -> impl Strategy<Value = Request> {
    (
        "[A-Z]{3,7}",
        "(/[a-z0-9._~-]{1,8}){1,4}/?",
        prop::collection::vec(("[a-z_]{1,6}", "[a-zA-Z0-9 &=+%]{0,8}"), 0..5),
        prop::collection::vec(("x-[a-z]{1,8}", "[a-zA-Z0-9]{1,12}"), 0..3),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(method, path, query, extra_headers, body)| {
            let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
            for (name, value) in extra_headers {
                if !headers.iter().any(|(existing, _)| existing.eq_ignore_ascii_case(&name)) {
                    headers.push((name, value));
                }
            }
            Request { method, path, query, headers, body }
        })
}

/// Replaces the byte at `index % len` of an ASCII string with `replacement`
/// (skipped when equal), keeping it ASCII.
fn change_byte(text: &mut String, index: usize, replacement: u8) -> bool {
    if text.is_empty() {
        return false;
    }
    let mut bytes = text.clone().into_bytes();
    let at = index % bytes.len();
    if bytes[at] == replacement {
        return false;
    }
    bytes[at] = replacement;
    *text = String::from_utf8(bytes).unwrap();
    true
}

proptest! {
    #[test]
    fn signed_requests_verify(mut request in request()) {
        let authorization = request.sign();
        prop_assert_eq!(request.verify(&authorization), Ok(()));
    }

    #[test]
    fn changed_method_fails(mut request in request(), index in any::<usize>(), letter in b'A'..=b'Z') {
        let authorization = request.sign();
        prop_assume!(change_byte(&mut request.method, index, letter));
        prop_assert!(request.verify(&authorization).is_err());
    }

    #[test]
    fn changed_path_fails(mut request in request(), index in any::<usize>(), byte in "[a-z0-9/]") {
        let authorization = request.sign();
        prop_assume!(change_byte(&mut request.path, index, byte.as_bytes()[0]));
        prop_assert!(request.verify(&authorization).is_err());
    }

    #[test]
    fn changed_query_fails(
        mut request in request(), pair in any::<usize>(), in_key in any::<bool>(), index in any::<usize>(), byte in "[a-z0-9 ]",
    ) {
        let authorization = request.sign();
        prop_assume!(!request.query.is_empty());
        let count = request.query.len();
        let (key, value) = &mut request.query[pair % count];
        prop_assume!(change_byte(if in_key { key } else { value }, index, byte.as_bytes()[0]));
        prop_assert!(request.verify(&authorization).is_err());
    }

    #[test]
    fn changed_body_fails(mut request in request(), index in any::<usize>(), byte in any::<u8>()) {
        let authorization = request.sign();
        prop_assume!(!request.body.is_empty());
        let at = index % request.body.len();
        prop_assume!(request.body[at] != byte);
        request.body[at] = byte;
        prop_assert!(request.verify(&authorization).is_err());
    }

    #[test]
    fn changed_signed_header_value_fails(
        mut request in request(), header in any::<usize>(), index in any::<usize>(), byte in "[a-zA-Z0-9]",
    ) {
        let authorization = request.sign();
        let count = request.headers.len();
        let (_, value) = &mut request.headers[header % count];
        prop_assume!(change_byte(value, index, byte.as_bytes()[0]));
        prop_assert!(request.verify(&authorization).is_err());
    }
}

fn signed_example() -> (Request, Authorization) {
    let mut request = Request {
        method: "POST".into(),
        path: "/v3/p/traces".into(),
        query: vec![],
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: b"{\"traces\":[]}".to_vec(),
    };
    let authorization = request.sign();
    (request, authorization)
}

#[test]
fn verification_refuses_each_structural_defect() {
    type Defect = fn(&mut Request, &mut Authorization, &mut i64);
    let cases: [(&str, Defect, SignatureError); 9] = [
        (
            "date missing",
            |r, _, _| r.headers.retain(|(n, _)| n != "X-Sdk-Date"),
            SignatureError::SignedHeaderMissing("x-sdk-date".into()),
        ),
        (
            "date unsigned",
            |_, a, _| a.signed_headers.retain(|n| n != "x-sdk-date"),
            SignatureError::RequiredHeaderNotSigned("x-sdk-date"),
        ),
        (
            "host unsigned",
            |_, a, _| a.signed_headers.retain(|n| n != "host"),
            SignatureError::RequiredHeaderNotSigned("host"),
        ),
        ("bad date", |r, _, _| set_header(r, "X-Sdk-Date", "2023-11-14T22:13:20Z"), SignatureError::MalformedDate),
        ("16 minutes late", |_, _, now| *now += 16 * 60 * 1000, SignatureError::ClockSkew),
        ("16 minutes early", |_, _, now| *now -= 16 * 60 * 1000, SignatureError::ClockSkew),
        (
            "repeated host",
            |r, _, _| r.headers.push(("host".into(), "evil".into())),
            SignatureError::DuplicateHeader("host".into()),
        ),
        (
            "signed header absent",
            |_, a, _| a.signed_headers.push("x-zzz".into()),
            SignatureError::SignedHeaderMissing("x-zzz".into()),
        ),
        ("wrong signature", |_, a, _| a.signature = "0".repeat(64), SignatureError::SignatureMismatch),
    ];
    for (name, defect, expected) in cases {
        let (mut request, mut authorization) = signed_example();
        let mut now = NOW_MS;
        defect(&mut request, &mut authorization, &mut now);
        let outcome = verify(&request.signed(), &authorization, SECRET_KEY.as_bytes(), now);
        assert_eq!(outcome, Err(expected), "{name}");
    }
}

#[test]
fn within_fifteen_minutes_either_way_verifies() {
    let (request, authorization) = signed_example();
    for skew in [-15 * 60 * 1000, 15 * 60 * 1000] {
        assert_eq!(verify(&request.signed(), &authorization, SECRET_KEY.as_bytes(), NOW_MS + skew), Ok(()));
    }
}

#[test]
fn declared_content_hash_must_match_body_and_be_signed() {
    let mut request = Request {
        method: "POST".into(),
        path: "/v3/p/traces".into(),
        query: vec![],
        headers: vec![("X-Sdk-Content-Sha256".into(), "UNSIGNED-PAYLOAD".into())],
        body: b"{}".to_vec(),
    };
    let authorization = request.sign();
    assert_eq!(request.verify(&authorization), Err(SignatureError::UnsignedPayload));

    let (mut request, authorization) = signed_example();
    request.headers.push(("X-Sdk-Content-Sha256".into(), "ab".repeat(32)));
    assert_eq!(request.verify(&authorization), Err(SignatureError::RequiredHeaderNotSigned("x-sdk-content-sha256")));
}

fn set_header(request: &mut Request, name: &str, value: &str) {
    for (existing, old) in &mut request.headers {
        if existing.eq_ignore_ascii_case(name) {
            *old = value.to_owned();
        }
    }
}
