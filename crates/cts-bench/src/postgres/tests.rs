use super::*;
use cts_model::TraceInput;
use serde_json::json;

fn escaped(value: &str) -> String {
    let mut out = String::new();
    escape_copy_text(value, &mut out);
    out
}

#[test]
fn copy_text_escapes_backslash_tab_newline_and_carriage_return() {
    let cases = [
        ("plain text", "plain text"),
        ("a\tb", "a\\tb"),
        ("line1\nline2", "line1\\nline2"),
        ("crlf\r\n", "crlf\\r\\n"),
        ("C:\\path\\n", "C:\\\\path\\\\n"),
        ("\\N", "\\\\N"),
        ("{\"k\":\"v\\\"\"}", "{\"k\":\"v\\\\\"\"}"),
        ("unicode ✓ 漢字", "unicode ✓ 漢字"),
        ("", ""),
    ];
    for (input, expected) in cases {
        assert_eq!(escaped(input), expected, "{input:?}");
    }
}

/// Reverses COPY text escaping the way PostgreSQL reads a field.
fn unescape(field: &str) -> Option<String> {
    if field == "\\N" {
        return None;
    }
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => panic!("dangling backslash in {field:?}"),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn trace_with_awkward_text() -> Trace {
    let input = json!({
        "trace_id": "6f1c2b8e-6a41-4d7e-9a55-0c3a7d3f1b2e",
        "trace_name": "createOrder",
        "trace_type": "ApiCall",
        "service_type": "marketplace",
        "resource_type": "Order",
        "resource_name": "CRM\\Pro",
        "source_ip": "10.1.2.3",
        "request": "{\"note\":\"tab\\there\",\n \"path\":\"C:\\\\x\"}",
        "response": "line1\r\nline2",
        "code": "409",
        "message": "first line\n\tsecond line",
        "time": 1_795_000_000_123_i64,
        "user": {"name": "li.na", "domain": {"id": "d1"}, "invoked_by": ["service.a", "quote\"d", "back\\slash"],
                 "principal_is_root_user": "false", "type": "User"}
    });
    TraceInput::from_json(&input.to_string()).unwrap().into_trace("project-1", 1_795_000_000_456).unwrap()
}

#[test]
fn a_copy_row_has_one_field_per_column_and_round_trips_the_text() {
    let trace = trace_with_awkward_text();
    let mut row = String::new();
    encode_copy_row(&trace, &mut row);
    assert!(row.ends_with('\n'));
    let body = &row[..row.len() - 1];
    assert!(!body.contains('\n') && !body.contains('\r'), "raw line breaks would split the row: {body:?}");
    let fields: Vec<Option<String>> = body.split('\t').map(unescape).collect();
    assert_eq!(fields.len(), COLUMNS.len());
    let field = |name: &str| fields[COLUMNS.iter().position(|(column, _)| *column == name).unwrap()].clone();
    assert_eq!(field("trace_id").as_deref(), Some(trace.trace_id.as_str()));
    assert_eq!(field("request"), trace.request);
    assert_eq!(field("response"), trace.response);
    assert_eq!(field("message"), trace.message);
    assert_eq!(field("resource_name"), trace.resource_name);
    assert_eq!(field("trace_rating").as_deref(), Some("warning"));
    assert_eq!(field("code").as_deref(), Some("409"));
    assert_eq!(field("read_only").as_deref(), Some("false"));
    assert_eq!(field("time").as_deref(), Some("2026-11-18 11:06:40.123+00"));
    assert_eq!(field("record_time").as_deref(), Some("2026-11-18 11:06:40.456+00"));
    assert_eq!(field("user_domain_id").as_deref(), Some("d1"));
    assert_eq!(field("user_domain_name"), None);
    assert_eq!(field("user_type").as_deref(), Some("User"));
    assert_eq!(field("user_invoked_by").as_deref(), Some(r#"{"service.a","quote\"d","back\\slash"}"#));
    assert_eq!(field("resource_id"), None);
    assert_eq!(field("user_session_created_at"), None);
}

#[test]
fn schema_indexes_every_list_traces_filter_after_the_project() {
    let statements = schema_statements();
    assert!(statements[1].contains("trace_id uuid PRIMARY KEY"));
    for (_, column) in FILTER_COLUMNS {
        let index = format!("(project_id, {column}, time DESC)");
        assert_eq!(statements.iter().filter(|s| s.contains(&index)).count(), 1, "{index}");
    }
    assert!(statements.iter().any(|s| s.ends_with("(project_id, time DESC)")));
    for (_, column) in FILTER_COLUMNS {
        assert!(COLUMNS.iter().any(|(name, _)| name == column), "{column}");
    }
}

#[test]
fn list_statement_numbers_filter_parameters_after_the_fixed_ones() {
    let query = ListQuery {
        filters: vec![("user", "li.na".into()), ("trace_name", "createOrder".into())],
        terms: Vec::new(),
        from_ms: 1,
        to_ms: 2,
        limit: 10,
    };
    let (sql, values) = list_statement(&query);
    assert!(sql.contains("AND user_name = $5 AND trace_name = $6 ORDER BY time DESC, trace_id DESC LIMIT $4"), "{sql}");
    assert!(sql.contains("tracker_name IS NULL"));
    assert_eq!(values, vec!["li.na".to_owned(), "createOrder".to_owned()]);
}

#[test]
fn the_select_list_reads_back_every_column_in_copy_order() {
    let list = select_list();
    let expressions: Vec<&str> = list.split(", ").collect();
    assert_eq!(expressions.len(), COLUMNS.len());
    for ((name, _), expression) in COLUMNS.iter().zip(&expressions) {
        assert!(expression.contains(name), "{expression} reads {name}");
    }
}

#[test]
fn free_text_terms_become_ilike_groups_after_the_filters() {
    let query = ListQuery {
        filters: vec![("resource_type", "order".into())],
        terms: vec!["order-2026".into(), "50%_off".into()],
        from_ms: 1,
        to_ms: 2,
        limit: 200,
    };
    let (sql, values) = list_statement(&query);
    assert!(
        sql.contains(
            "AND resource_type = $5 AND (request ILIKE $6 OR response ILIKE $6 OR message ILIKE $6) \
             AND (request ILIKE $7 OR response ILIKE $7 OR message ILIKE $7) ORDER BY"
        ),
        "{sql}"
    );
    assert_eq!(values, vec!["order".to_owned(), "%order-2026%".to_owned(), "%50\\%\\_off%".to_owned()]);
}

#[test]
fn like_patterns_take_wildcards_and_backslashes_literally() {
    for (term, pattern) in [("abc", "%abc%"), ("a%b", "%a\\%b%"), ("a_b", "%a\\_b%"), ("a\\b", "%a\\\\b%"), ("", "%%")]
    {
        assert_eq!(like_pattern(term), pattern, "{term}");
    }
}
