//! Redaction of secrets in JSON documents and trace texts: by the reporter before traces leave a service, and by
//! the server before a trace is stored.
//!
//! Two rules, applied at any depth (objects inside arrays too):
//! - the value of a key whose name matches a secret name is replaced with [`MASK`], whatever it is (a string, a
//!   number, a whole object). Names match case-insensitively and ignoring `_` and `-`, so `accessToken`,
//!   `ACCESS-TOKEN` and `access_token` are one name;
//! - a card-number-like digit run standing on its own (not inside an identifier such as `order-2026…`: 13 to 19
//!   digits with a card network's leading digits, optionally grouped by single spaces or hyphens, passing the Luhn
//!   check) is masked wherever it appears: inside a string, as a whole number, or as an object key.
//!
//! A trace's `request`, `response` and `message` are texts: JSON documents are redacted by those rules; any other
//! text has its card numbers masked and the values of secret `name=value` pairs (query strings, form bodies)
//! replaced. A text is only parsed when a cheap scan finds a secret name or a card number in it.

use crate::Trace;
use serde_json::{Map, Value};

/// What a redacted value becomes.
pub const MASK: &str = "******";

/// The secret key names redacted by default.
pub const DEFAULT_SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "secret_key",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "authorization",
    "credential",
    "credentials",
    "card_number",
    "cvv",
    "cvc",
    "pin",
    "private_key",
    "api_key",
    "sk",
];

/// Replaces secrets in JSON documents.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Normalised secret names (see [`normalise`]).
    secret_keys: Vec<String>,
    /// The fewest and most characters of a normalised secret name: the cheap scan skips tokens outside.
    name_chars: std::ops::RangeInclusive<usize>,
    /// The ASCII bytes the normalised secret names hold.
    name_bytes: [bool; 128],
}

impl Default for Redactor {
    fn default() -> Redactor {
        Redactor::new(DEFAULT_SECRET_KEYS.iter().copied())
    }
}

impl Redactor {
    /// A redactor for exactly these key names.
    pub fn new<'a>(secret_keys: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut keys: Vec<String> = secret_keys.into_iter().map(normalise).collect();
        keys.sort();
        keys.dedup();
        let chars = keys.iter().map(|key| key.chars().count());
        let name_chars = chars.clone().min().unwrap_or(1)..=chars.max().unwrap_or(0);
        let mut name_bytes = [false; 128];
        keys.iter()
            .flat_map(|key| key.bytes())
            .filter(u8::is_ascii)
            .for_each(|byte| name_bytes[usize::from(byte)] = true);
        Redactor { secret_keys: keys, name_chars, name_bytes }
    }

    /// A redactor for the default names and these.
    pub fn with_extra_keys<'a>(extra: impl IntoIterator<Item = &'a str>) -> Redactor {
        Redactor::new(DEFAULT_SECRET_KEYS.iter().copied().chain(extra))
    }

    /// The secret names, normalised (lowercase, without `_` and `-`), sorted.
    pub fn secret_keys(&self) -> &[String] {
        &self.secret_keys
    }

    /// Redacts a trace's free-form texts (`request`, `response`, `message`) in place; whether anything changed.
    pub fn redact_trace(&self, trace: &mut Trace) -> bool {
        let mut changed = false;
        for text in [&mut trace.request, &mut trace.response, &mut trace.message].into_iter().flatten() {
            if let Some(redacted) = self.redact_text(text) {
                *text = redacted;
                changed = true;
            }
        }
        changed
    }

    /// `text` with its secrets replaced, or `None` when it holds none. A JSON document is redacted as a document
    /// (and written back compactly); any other text by its card numbers and `name=value` pairs.
    pub fn redact_text(&self, text: &str) -> Option<String> {
        if !self.may_hold_secret(text) {
            return None;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(original) => {
                let mut redacted = original.clone();
                self.redact(&mut redacted);
                (redacted != original).then(|| redacted.to_string())
            }
            Err(_) => self.redact_plain_text(text),
        }
    }

    /// A superset of the texts [`Redactor::redact_text`] changes: one holding a card number, an escape sequence
    /// (a key could hide behind `\u0070assword`), or a token between JSON or form punctuation that is a secret name.
    fn may_hold_secret(&self, text: &str) -> bool {
        if text.contains('\\') || card_number_runs(text).next().is_some() {
            return true;
        }
        let mut name = Vec::new();
        text.as_bytes().split(|&byte| is_token_boundary(byte)).any(|token| self.is_secret_token(token, &mut name))
    }

    /// Whether a token of the cheap scan is a secret name, without allocating for the common tokens: those of
    /// ASCII only are lowercased into `name`; the rare others go through [`normalise`] (Unicode lowercasing turns
    /// some non-ASCII letters into ASCII ones, the Kelvin sign into `k`).
    fn is_secret_token(&self, token: &[u8], name: &mut Vec<u8>) -> bool {
        let is_separator = |byte: &&u8| matches!(byte, b'_' | b'-');
        if token.len() < *self.name_chars.start() {
            return false;
        }
        if !token.is_ascii() {
            // Lowercasing never makes fewer characters: a token already too long cannot be a name.
            let text = std::str::from_utf8(token).expect("split at ASCII bytes of a str");
            return text.chars().filter(|c| *c != '_' && *c != '-').count() <= *self.name_chars.end()
                && self.is_secret_key(text);
        }
        // One pass, leaving at the first byte no secret name holds (most tokens: values, ids, numbers).
        name.clear();
        for byte in token.iter().filter(|byte| !is_separator(byte)).map(u8::to_ascii_lowercase) {
            if !self.name_bytes[usize::from(byte)] || name.len() == *self.name_chars.end() {
                return false;
            }
            name.push(byte);
        }
        self.name_chars.contains(&name.len())
            && self.secret_keys.binary_search_by(|key| key.as_bytes().cmp(name)).is_ok()
    }

    /// Card numbers masked, and the value of every `name=value` pair (separated by `&`, `;` or whitespace) whose
    /// name is a secret.
    fn redact_plain_text(&self, text: &str) -> Option<String> {
        let masked = mask_card_numbers(text);
        let source = masked.as_deref().unwrap_or(text);
        let mut redacted = String::with_capacity(source.len());
        let mut pairs_masked = false;
        let mut rest = source;
        while !rest.is_empty() {
            let end = rest.find(['&', ';', ' ', '\n', '\t', '\r']).unwrap_or(rest.len());
            let (pair, tail) = rest.split_at(end);
            match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() && value != MASK && self.is_secret_key(name) => {
                    redacted.push_str(name);
                    redacted.push('=');
                    redacted.push_str(MASK);
                    pairs_masked = true;
                }
                _ => redacted.push_str(pair),
            }
            let separator = tail.chars().next().map_or(0, char::len_utf8);
            redacted.push_str(&tail[..separator]);
            rest = &tail[separator..];
        }
        if pairs_masked {
            Some(redacted)
        } else {
            masked
        }
    }

    /// Whether the value under `key` is a secret.
    pub fn is_secret_key(&self, key: &str) -> bool {
        self.secret_keys.binary_search(&normalise(key)).is_ok()
    }

    /// Redacts `value` in place.
    pub fn redact(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                let entries = std::mem::take(map);
                *map = entries.into_iter().map(|(key, value)| self.redact_entry(key, value)).collect::<Map<_, _>>();
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            Value::String(text) => {
                if let Some(masked) = mask_card_numbers(text) {
                    *text = masked;
                }
            }
            Value::Number(number) => {
                if is_card_number(&number.to_string()) {
                    *value = Value::String(MASK.to_owned());
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn redact_entry(&self, key: String, mut value: Value) -> (String, Value) {
        if self.is_secret_key(&key) {
            value = Value::String(MASK.to_owned());
        } else {
            self.redact(&mut value);
        }
        (mask_card_numbers(&key).unwrap_or(key), value)
    }
}

/// Where [`Redactor::may_hold_secret`] splits a text into candidate names: JSON and form punctuation, ASCII
/// whitespace (every separator [`Redactor::redact_plain_text`] splits at, and JSON's quotes around keys).
fn is_token_boundary(byte: u8) -> bool {
    byte.is_ascii_whitespace()
        || matches!(byte, b'"' | b'{' | b'}' | b'[' | b']' | b',' | b':' | b'=' | b'&' | b';' | b'?')
}

/// A key name without case, `_` and `-`.
fn normalise(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// `text` with every card-number-like digit run masked, or `None` when it holds none.
pub fn mask_card_numbers(text: &str) -> Option<String> {
    let mut runs = card_number_runs(text).peekable();
    runs.peek()?;
    let mut masked = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for run in runs {
        masked.push_str(&text[copied_up_to..run.start]);
        masked.push_str(MASK);
        copied_up_to = run.end;
    }
    masked.push_str(&text[copied_up_to..]);
    Some(masked)
}

/// The byte ranges of `text`'s card-number-like digit runs, in order.
fn card_number_runs(text: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let bytes = text.as_bytes();
    // Cheap rejection: a card number needs at least 13 digits.
    let enough_digits = bytes.iter().filter(|byte| byte.is_ascii_digit()).count() >= 13;
    let mut i = 0;
    std::iter::from_fn(move || {
        if !enough_digits {
            return None;
        }
        loop {
            let start = i + bytes.get(i..)?.iter().position(u8::is_ascii_digit)?;
            i = digit_run_end(bytes, start);
            // 13 digits at least (the run's bytes include its separators), not inside an identifier.
            let standalone = (start == 0 || !is_identifier_byte(bytes[start - 1]))
                && !bytes.get(i).is_some_and(|&byte| is_identifier_byte(byte));
            if i - start >= 13 && standalone && is_card_number(&text[start..i]) {
                return Some(start..i);
            }
        }
    })
}

/// The end of a run of digits starting at `start`, where single spaces or hyphens between digits belong to the run.
fn digit_run_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    let mut i = start;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            i += 1;
            end = i;
        } else if matches!(bytes[i], b' ' | b'-') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
        } else {
            break;
        }
    }
    end
}

/// Whether a digit run next to this byte is part of a longer identifier (`order-2026…`, `OFFI6773…`), not a card
/// number on its own.
fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-')
}

/// 13 to 19 digits (separators ignored) with a card network's leading digits (American Express, Diners Club, JCB:
/// 3; Visa: 4; Mastercard: 51-55 and 2221-2720; Discover, UnionPay: 6) passing the Luhn check.
fn is_card_number(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    let digits = || bytes.iter().filter(|byte| byte.is_ascii_digit()).map(|byte| u32::from(byte - b'0'));
    if !(13..=19).contains(&digits().count()) || bytes.iter().any(|b| !b.is_ascii_digit() && *b != b' ' && *b != b'-') {
        return false;
    }
    let prefix = digits().take(4).fold(0, |prefix, digit| prefix * 10 + digit);
    let network = match prefix / 1000 {
        3..=6 => true,
        2 => (2221..=2720).contains(&prefix),
        _ => false,
    };
    if !network {
        return false;
    }
    let sum: u32 = digits()
        .rev()
        .enumerate()
        .map(|(position, digit)| match (position % 2, digit * 2) {
            (0, _) => digit,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn secret_keys_match_ignoring_case_underscores_and_hyphens() {
        let redactor = Redactor::default();
        for key in ["password", "PassWord", "access_token", "accessToken", "ACCESS-TOKEN", "cardNumber", "card_number"]
        {
            assert!(redactor.is_secret_key(key), "{key}");
        }
        for key in ["passwords_policy", "name", "tokenizer", "pinned", "spin"] {
            assert!(!redactor.is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn redacts_at_any_depth_including_objects_in_arrays() {
        let mut doc = json!({
            "user": {"name": "alice", "Password": "hunter2"},
            "cards": [{"cardNumber": 4111111111111111u64, "cvv": "123", "holder": "A"}],
            "headers": {"Authorization": {"scheme": "Bearer", "value": "abc"}},
            "note": "pay with 4111 1111 1111 1111 today",
            "order": "ORD0000000001",
        });
        Redactor::default().redact(&mut doc);
        assert_eq!(
            doc,
            json!({
                "user": {"name": "alice", "Password": MASK},
                "cards": [{"cardNumber": MASK, "cvv": MASK, "holder": "A"}],
                "headers": {"Authorization": MASK},
                "note": format!("pay with {MASK} today"),
                "order": "ORD0000000001",
            })
        );
    }

    #[test]
    fn card_numbers_need_the_luhn_check_and_13_to_19_digits() {
        let cases = [
            ("4111111111111111", true),
            ("4111-1111-1111-1111", true),
            ("5500 0000 0000 0004", true),
            ("4111111111111112", false),       // Luhn fails
            ("411111111111", false),           // 12 digits
            ("4111  1111 1111 1111", false),   // double space splits the run
            ("20250101123000123", false),      // a timestamp-like number failing Luhn
            ("2026031900184791894", false),    // passes Luhn, but no card network starts with 2026
            ("1234567890123452", false),       // passes Luhn, but no card network starts with 1
            ("2221000000000009", true),        // Mastercard's 2-series
            ("order-4111111111111111", false), // part of an identifier
            ("OFFI4111111111111111", false),
            ("4111111111111111_x", false),
            ("card 4111111111111111.", true),
            ("/cards/4111111111111111?x=1", true),
        ];
        for (text, masked) in cases {
            assert_eq!(mask_card_numbers(text).is_some(), masked, "{text}");
        }
        let mut number = json!(4111111111111111u64);
        Redactor::default().redact(&mut number);
        assert_eq!(number, json!(MASK));
    }

    #[test]
    fn custom_names_replace_the_defaults() {
        let redactor = Redactor::new(["otp"]);
        let mut doc = json!({"OTP": "123456", "password": "kept"});
        redactor.redact(&mut doc);
        assert_eq!(doc, json!({"OTP": MASK, "password": "kept"}));
    }

    #[test]
    fn trace_texts_are_redacted_as_json_documents_or_as_name_value_pairs() {
        let redactor = Redactor::default();
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"user":"alice","auth":{"Password":"hunter2"}}"#,
                Some(r#"{"auth":{"Password":"******"},"user":"alice"}"#),
            ),
            (r#"{"p\u0061ssword":"hunter2"}"#, Some(r#"{"password":"******"}"#)),
            (r#"{"note":"reset my password please"}"#, None),
            // A Kelvin sign lowercases to `k`: "S\u{212A}" is the secret name `sk`.
            ("{\"S\u{212A}\":\"v\",\"id\":1}", Some("{\"S\u{212A}\":\"******\",\"id\":1}")),
            (r#"{"order_id":"ORD-1","amount":12}"#, None),
            ("user=alice&password=hunter2&Access-Token=abc", Some("user=alice&password=******&Access-Token=******")),
            ("login failed for alice; token=abc", Some("login failed for alice; token=******")),
            ("paid with 4111 1111 1111 1111", Some("paid with ******")),
            ("password= (empty) stays", None),
            ("plain words only", None),
        ];
        for (text, expected) in cases {
            assert_eq!(redactor.redact_text(text).as_deref(), *expected, "{text}");
        }
    }

    #[test]
    fn a_trace_has_its_request_response_and_message_redacted() {
        let mut trace: Trace = serde_json::from_value(json!({
            "trace_id": "t", "trace_name": "createOrder", "trace_rating": "normal", "trace_type": "ApiCall",
            "service_type": "marketplace", "resource_type": "order", "project_id": "p", "read_only": false,
            "time": 1, "record_time": 1,
            "request": r#"{"card":{"card_number":"4111111111111111"}}"#,
            "response": r#"{"id":"o-1"}"#,
            "message": "charged 5500-0000-0000-0004",
        }))
        .unwrap();
        assert!(Redactor::default().redact_trace(&mut trace));
        assert_eq!(trace.request.as_deref(), Some(r#"{"card":{"card_number":"******"}}"#));
        assert_eq!(trace.response.as_deref(), Some(r#"{"id":"o-1"}"#));
        assert_eq!(trace.message.as_deref(), Some("charged ******"));
        assert!(!Redactor::default().redact_trace(&mut trace), "a redacted trace has nothing left to redact");
    }

    /// Key names: the default secrets in varied spellings, and harmless names.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            (prop::sample::select(DEFAULT_SECRET_KEYS), any::<bool>(), any::<bool>()).prop_map(|(k, upper, hyphen)| {
                let k = if hyphen { k.replace('_', "-") } else { k.to_owned() };
                if upper {
                    k.to_uppercase()
                } else {
                    k
                }
            }),
            "[a-z]{1,8}".prop_filter("not a secret name", |k| !Redactor::default().is_secret_key(k)),
        ]
    }

    /// JSON documents whose leaves hold no digit runs, so only key-based redaction applies.
    fn document() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..1_000_000).prop_map(Value::from),
            "[a-zA-Z ]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The model: every value under a secret key is the mask; everything else equals the original.
    fn check(original: &Value, redacted: &Value, redactor: &Redactor) -> Result<(), TestCaseError> {
        match (original, redacted) {
            (Value::Object(a), Value::Object(b)) => {
                prop_assert_eq!(a.len(), b.len());
                for (key, value) in a {
                    let after = b.get(key).ok_or_else(|| TestCaseError::fail(format!("{key} vanished")))?;
                    if redactor.is_secret_key(key) {
                        prop_assert_eq!(after, &json!(MASK));
                    } else {
                        check(value, after, redactor)?;
                    }
                }
                Ok(())
            }
            (Value::Array(a), Value::Array(b)) => {
                prop_assert_eq!(a.len(), b.len());
                a.iter().zip(b).try_for_each(|(x, y)| check(x, y, redactor))
            }
            (a, b) => {
                prop_assert_eq!(a, b);
                Ok(())
            }
        }
    }

    proptest! {
        #[test]
        fn no_secret_value_survives_and_other_content_is_unchanged(original in document()) {
            let redactor = Redactor::default();
            let mut redacted = original.clone();
            redactor.redact(&mut redacted);
            check(&original, &redacted, &redactor)?;
        }

        #[test]
        fn the_cheap_scan_never_skips_a_text_that_holds_a_secret(original in document()) {
            let redactor = Redactor::default();
            let mut redacted = original.clone();
            redactor.redact(&mut redacted);
            let text = original.to_string();
            prop_assert_eq!(redactor.redact_text(&text), (redacted != original).then(|| redacted.to_string()));
        }

        #[test]
        fn card_numbers_never_survive_inside_text(prefix in "([a-z]{1,6} )?", card in prop::sample::select(vec![
            "4111111111111111", "5500000000000004", "340000000000009", "6011000000000004", "4222222222222",
        ]), suffix in "( [a-z]{1,6})?") {
            let mut doc = json!({"note": format!("{prefix}{card}{suffix}")});
            Redactor::default().redact(&mut doc);
            let note = doc["note"].as_str().unwrap().to_owned();
            prop_assert!(!note.contains(card));
            prop_assert_eq!(note, format!("{prefix}{MASK}{suffix}"));
        }
    }
}
