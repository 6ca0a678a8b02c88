use super::*;
use proptest::prelude::*;
use serde_json::json;

const RECORDED: i64 = 1_790_000_000_000;

fn valid() -> Value {
    json!({
        "trace_id": "5E2B1E4C-2F3A-4B5C-8D9E-0A1B2C3D4E5F",
        "trace_name": "createOrder",
        "trace_type": "ConsoleAction",
        "service_type": "marketplace",
        "resource_type": "Order",
        "resource_id": "order-0001",
        "resource_name": "order-0001",
        "source_ip": "203.0.113.7",
        "request": {"productId": "p-1", "period": "1 month"},
        "response": "{\"orderId\":\"order-0001\"}",
        "code": "200",
        "time": RECORDED - 1000,
        "user": {
            "id": "u-1", "name": "alice",
            "domain": {"id": "d-1", "name": "acme"},
            "access_key_id": "AKTEST",
            "principal_urn": "iam::d-1:user:alice",
            "principal_is_root_user": "false",
            "type": "User",
            "invoked_by": ["service.console"],
            "session_context": {"attributes": {"created_at": "2026-11-24T10:00:00Z", "mfa_authenticated": "true"}}
        }
    })
}

fn check(input: Value) -> Result<Trace, ValidationError> {
    TraceInput::from_json(&input.to_string())?.into_trace("proj-1", RECORDED)
}

fn with(field: &str, value: Value) -> Value {
    let mut v = valid();
    v[field] = value;
    v
}

#[test]
fn valid_trace_serialises_to_the_sdk_shape() {
    let trace = check(valid()).unwrap();
    insta::assert_json_snapshot!(trace);
}

#[test]
fn server_fills_id_time_rating_and_read_only() {
    let trace = check(json!({"trace_name": "queryOrderList", "service_type": "marketplace", "resource_type": "Order"}))
        .unwrap();
    assert!(uuid::Uuid::try_parse(&trace.trace_id).is_ok());
    assert_eq!(trace.time, RECORDED);
    assert_eq!(trace.record_time, RECORDED);
    assert_eq!(trace.trace_rating, TraceRating::Normal);
    assert_eq!(trace.trace_type, TraceType::ApiCall);
    assert!(trace.read_only, "query* operations of the catalog are read-only");
    assert_eq!(trace.project_id, "proj-1");
}

#[test]
fn trace_id_is_normalised_to_lowercase_hyphenated() {
    assert_eq!(check(valid()).unwrap().trace_id, "5e2b1e4c-2f3a-4b5c-8d9e-0a1b2c3d4e5f");
}

#[test]
fn explicit_rating_wins_over_code() {
    let mut v = with("code", json!(500));
    v["trace_rating"] = json!("warning");
    assert_eq!(check(v).unwrap().trace_rating, TraceRating::Warning);
}

#[test]
fn invalid_traces_name_the_field() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("trace_name", json!("1createOrder"), "trace_name"),
        ("trace_name", json!("create Order"), "trace_name"),
        ("trace_name", json!("a".repeat(65)), "trace_name"),
        ("trace_name", Value::Null, "trace_name"),
        ("service_type", json!(""), "service_type"),
        ("trace_rating", json!("fatal"), "trace_rating"),
        ("trace_type", json!("Console"), "trace_type"),
        ("trace_id", json!("not-a-uuid"), "trace_id"),
        ("code", json!("2000"), "code"),
        ("code", json!(99), "code"),
        ("code", json!(true), "code"),
        ("source_ip", json!("300.1.1.1"), "source_ip"),
        ("time", json!(-5), "time"),
        ("time", json!(RECORDED + 2 * limits::FUTURE_SKEW_MS), "time"),
        ("request", json!("x".repeat(limits::BODY_MAX + 1)), "request"),
        ("response", json!("a\u{0}b"), "response"),
        ("resource_name", json!("line\nbreak"), "resource_name"),
        ("resource_id", json!("r".repeat(limits::TEXT_MAX + 1)), "resource_id"),
        ("message", json!("m".repeat(limits::MESSAGE_MAX + 1)), "message"),
        ("tracker_name", json!("my-tracker"), "tracker_name"),
        ("record_time", json!(5), "trace"),
        ("project_id", json!("other"), "trace"),
    ];
    for (field, value, expected) in cases {
        let err = check(with(field, value.clone())).expect_err(&format!("{field}={value} must be refused"));
        assert_eq!(err.field, expected, "{field}={value}: {err}");
    }
}

#[test]
fn data_traces_need_a_tracker_name() {
    let mut v = with("trace_type", json!("ObsAPI"));
    assert_eq!(check(v.clone()).unwrap_err().field, "tracker_name");
    v["tracker_name"] = json!("-bad");
    assert_eq!(check(v.clone()).unwrap_err().field, "tracker_name");
    v["tracker_name"] = json!("obs-data");
    assert_eq!(check(v).unwrap().tracker_name.as_deref(), Some("obs-data"));
}

#[test]
fn user_fields_are_checked() {
    let mut v = valid();
    v["user"]["principal_is_root_user"] = json!("yes");
    assert_eq!(check(v).unwrap_err().field, "user.principal_is_root_user");
    let mut v = valid();
    v["user"]["type"] = json!("Robot");
    assert_eq!(check(v).unwrap_err().field, "trace");
    let mut v = valid();
    v["user"]["nickname"] = json!("x");
    assert_eq!(check(v).unwrap_err().field, "trace");
}

#[test]
fn duplicate_keys_are_refused() {
    let err = TraceInput::from_json(r#"{"trace_name":"a","trace_name":"b"}"#).unwrap_err();
    assert!(err.reason.contains("duplicate"), "{err}");
}

proptest! {
    #[test]
    fn rating_follows_the_status_class(code in 100u16..600) {
        let trace = check(with("code", json!(code.to_string()))).unwrap();
        let expected = match code { 100..=399 => TraceRating::Normal, 400..=499 => TraceRating::Warning, _ => TraceRating::Incident };
        prop_assert_eq!(trace.trace_rating, expected);
        prop_assert_eq!(trace.code, Some(code.to_string()));
    }

    #[test]
    fn stored_trace_round_trips_through_json(name in "[A-Za-z][A-Za-z0-9_.-]{0,63}", rid in "[ -~]{0,100}") {
        let mut v = with("trace_name", json!(name));
        v["resource_id"] = json!(rid);
        let trace = check(v).unwrap();
        let back: Trace = serde_json::from_str(&serde_json::to_string(&trace).unwrap()).unwrap();
        prop_assert_eq!(back, trace);
    }
}

#[test]
fn trace_id_in_other_uuid_forms_is_normalised() {
    let expected = "5e2b1e4c-2f3a-4b5c-8d9e-0a1b2c3d4e5f";
    for id in [
        expected,
        "5E2B1E4C-2F3A-4B5C-8D9E-0A1B2C3D4E5F",
        "5e2b1e4c2f3a4b5c8d9e0a1b2c3d4e5f",
        "{5e2b1e4c-2f3a-4b5c-8d9e-0a1b2c3d4e5f}",
        "urn:uuid:5E2B1E4C-2F3A-4B5C-8D9E-0A1B2C3D4E5F",
    ] {
        assert_eq!(check(with("trace_id", json!(id))).unwrap().trace_id, expected, "{id}");
    }
}

#[test]
fn code_is_stored_as_three_digits() {
    for (code, expected) in [(json!("404"), "404"), (json!(503), "503"), (json!(200.0), "")] {
        match check(with("code", code.clone())) {
            Ok(trace) => assert_eq!(trace.code.as_deref(), Some(expected), "{code}"),
            Err(err) => assert!(expected.is_empty() && err.field == "code", "{code}: {err}"),
        }
    }
    for refused in [json!("+99"), json!("20 "), json!(" 200"), json!("600"), json!(-200)] {
        assert_eq!(check(with("code", refused.clone())).unwrap_err().field, "code", "{refused}");
    }
}

#[test]
fn c1_control_characters_are_refused_in_text_and_allowed_line_breaks_in_messages() {
    assert_eq!(check(with("resource_name", json!("a\u{85}b"))).unwrap_err().field, "resource_name");
    assert_eq!(check(with("resource_name", json!("a\u{7f}"))).unwrap_err().field, "resource_name");
    assert!(
        check(with("resource_name", json!("a\u{a0}\u{c2}b"))).is_ok(),
        "U+00A0 and U+00C2 are not control characters"
    );
    assert!(check(with("message", json!("line\r\nbreak\ttab"))).is_ok());
    assert_eq!(check(with("message", json!("bell\u{7}"))).unwrap_err().field, "message");
    let mut v = valid();
    v["user"]["invoked_by"] = json!(["ok", "not\u{9f}ok"]);
    assert_eq!(check(v).unwrap_err().field, "user.invoked_by");
}

proptest! {
    #[test]
    fn control_char_scan_agrees_with_char_is_control(text in "(\\PC|[\\x00-\\x1f\\x7f-\\u{a0}]){0,40}") {
        prop_assert_eq!(has_control_char(&text, |_| false), text.chars().any(char::is_control));
        prop_assert_eq!(
            has_control_char(&text, |b| matches!(b, b'\n' | b'\r' | b'\t')),
            text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        );
    }
}
