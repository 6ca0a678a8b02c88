//! RFC 8785 JSON Canonicalization Scheme (JCS): the leaf data of a trace.
//!
//! Object members sorted by their names' UTF-16 code units, no insignificant whitespace, strings
//! escaped as ECMAScript's `JSON.stringify` does (only `"`, `\` and control characters; the short
//! forms `\b \t \n \f \r`, otherwise `\u00xx` in lowercase hex), numbers in ECMAScript's shortest
//! round-trip form.

use serde_json::Value;

/// The canonical form of a JSON value.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            // serde_json's map iterates in UTF-8 byte order, which is UTF-16 order unless a name holds a
            // character from U+E000 up (UTF-16 puts those after the surrogate pairs of U+10000 and up).
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            if sorted.iter().any(|(name, _)| name.chars().any(|c| c >= '\u{e000}')) {
                sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            }
            out.push(b'{');
            for (index, (name, member)) in sorted.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(name, out);
                out.push(b':');
                write_value(member, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text.as_bytes()[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{byte:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&text.as_bytes()[start..]);
    out.push(b'"');
}

fn write_number(number: &serde_json::Number, out: &mut Vec<u8>) {
    if let Some(integer) = number.as_i64() {
        out.extend_from_slice(integer.to_string().as_bytes());
    } else if let Some(integer) = number.as_u64() {
        out.extend_from_slice(integer.to_string().as_bytes());
    } else {
        // serde_json numbers are finite.
        out.extend_from_slice(ecmascript_number(number.as_f64().unwrap_or(0.0)).as_bytes());
    }
}

/// ECMAScript's `Number.prototype.toString` of a finite double (ECMA-262, Number::toString): the
/// shortest digits that round-trip, placed by the decimal exponent.
fn ecmascript_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // Rust's `{:e}` prints the shortest round-trip digits: "d.ddddde<exp>".
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` has an exponent");
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let k = digits.len() as i32;
    // value = 0.digits × 10^n
    let n = exponent.parse::<i32>().expect("an integer exponent") + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let exponent = n - 1;
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        let mantissa = if k == 1 { digits.clone() } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        format!("{mantissa}e{exponent_sign}{}", exponent.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        String::from_utf8(canonical_json(&serde_json::from_str(text).unwrap())).unwrap()
    }

    #[test]
    #[allow(clippy::excessive_precision, reason = "the RFC's input, digit for digit")]
    fn rfc_8785_section_3_2_2_example() {
        let mut input: serde_json::Value = serde_json::from_str(
            r#"{
              "numbers": [],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }"#,
        )
        .unwrap();
        // serde_json's default float parser may be off by an ulp; the literals here are exact.
        input["numbers"] = serde_json::json!([333333333.33333329_f64, 1E30_f64, 4.50_f64, 2e-3_f64, 1e-27_f64]);
        assert_eq!(
            String::from_utf8(canonical_json(&input)).unwrap(),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc_8785_section_3_2_3_sorts_by_utf16_code_units() {
        let input = r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#;
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canonical(input), expected);
    }

    #[test]
    fn rfc_8785_appendix_b_numbers() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992"),
            (295147905179352830000.0, "295147905179352830000"),
            (1e21, "1e+21"),
            (999999999999999700000.0, "999999999999999700000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (-1.5, "-1.5"),
            (333333333.3333333, "333333333.3333333"),
        ];
        for (value, expected) in cases {
            assert_eq!(ecmascript_number(value), expected, "{value:e}");
        }
    }

    #[test]
    fn integers_and_nesting_have_no_whitespace() {
        assert_eq!(
            canonical(r#" { "b" : [ 1 , -2 , { "d":1, "c":2 } ], "a" : 18446744073709551615 } "#),
            r#"{"a":18446744073709551615,"b":[1,-2,{"c":2,"d":1}]}"#
        );
    }
}
