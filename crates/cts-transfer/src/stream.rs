//! Streaming to a log service or SIEM, for trackers with `is_lts_enabled`: each trace as one RFC 5424 syslog
//! message over TCP (octet-counted framing, RFC 6587) and/or as one JSON line of a POST to an HTTP endpoint.
//!
//! Delivery is at least once: the engine sends a window's traces and moves the tracker's stream cursor only when
//! every sink took them; until then the traces wait in the store (on disk), and a resent window repeats traces
//! that the receiver tells apart by `trace_id` (in the message's structured data and in the JSON).

use cts_model::{Trace, TraceRating};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long connecting and sending a window may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Facility 13, log audit (RFC 5424 table 1).
const FACILITY_LOG_AUDIT: u8 = 13;
/// The structured data id: private (`name@enterprise number`).
const SD_ID: &str = "cts@32473";

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the syslog collector {address}: {reason}")]
    Syslog { address: String, reason: String },
    #[error("the HTTP endpoint {url}: {reason}")]
    Http { url: String, reason: String },
}

/// Where traces are streamed.
#[derive(Debug, Clone, Default)]
pub struct StreamConfig {
    /// `host:port` of a syslog collector taking RFC 5424 over TCP.
    pub syslog: Option<String>,
    /// An endpoint taking `POST` bodies of JSON lines (`application/x-ndjson`).
    pub http: Option<String>,
    /// The HOSTNAME of syslog messages.
    pub hostname: String,
}

/// Sends traces to the configured sinks.
#[derive(Debug)]
pub struct TraceStream {
    config: StreamConfig,
    http: reqwest::Client,
}

impl TraceStream {
    pub fn new(config: StreamConfig) -> TraceStream {
        let http = reqwest::Client::builder().timeout(SEND_TIMEOUT).build().expect("an HTTP client with a timeout");
        TraceStream { config, http }
    }

    /// Sends `traces` to every sink; an error means some sink may not have them all.
    pub async fn send(&self, traces: &[Trace]) -> Result<(), StreamError> {
        if traces.is_empty() {
            return Ok(());
        }
        if let Some(address) = &self.config.syslog {
            let failed = |reason: String| StreamError::Syslog { address: address.clone(), reason };
            let mut frames = Vec::new();
            for trace in traces {
                let message = syslog_message(trace, &self.config.hostname);
                frames.extend_from_slice(format!("{} ", message.len()).as_bytes());
                frames.extend_from_slice(&message);
            }
            let send = async {
                let mut connection = TcpStream::connect(address).await?;
                connection.write_all(&frames).await?;
                connection.shutdown().await
            };
            match tokio::time::timeout(SEND_TIMEOUT, send).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(failed(error.to_string())),
                Err(_) => return Err(failed("timed out".into())),
            }
        }
        if let Some(url) = &self.config.http {
            let failed = |reason: String| StreamError::Http { url: url.clone(), reason };
            let mut body = String::new();
            for trace in traces {
                body.push_str(&serde_json::to_string(trace).expect("a trace serializes"));
                body.push('\n');
            }
            let response = self
                .http
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .map_err(|e| failed(e.to_string()))?;
            if !response.status().is_success() {
                return Err(failed(format!("HTTP {}", response.status())));
            }
        }
        Ok(())
    }
}

/// One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME cts - MSGID [cts@32473 ...] BOM JSON`.
pub fn syslog_message(trace: &Trace, hostname: &str) -> Vec<u8> {
    let severity = match trace.trace_rating {
        TraceRating::Normal => 6,
        TraceRating::Warning => 4,
        TraceRating::Incident => 2,
    };
    let timestamp = chrono::DateTime::from_timestamp_millis(trace.time)
        .unwrap_or(chrono::DateTime::UNIX_EPOCH)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let mut structured = format!("[{SD_ID}");
    let fields = [
        ("trace_id", Some(trace.trace_id.as_str())),
        ("project_id", Some(trace.project_id.as_str())),
        ("service_type", Some(trace.service_type.as_str())),
        ("tracker_name", trace.tracker_name.as_deref()),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            structured.push_str(&format!(" {name}=\"{}\"", escape_param(value)));
        }
    }
    structured.push(']');
    let header = format!(
        "<{}>1 {timestamp} {} cts - {} {structured} ",
        FACILITY_LOG_AUDIT * 8 + severity,
        header_field(hostname, 255),
        header_field(&trace.trace_name, 32),
    );
    let json = serde_json::to_string(trace).expect("a trace serializes");
    [header.as_bytes(), "\u{feff}".as_bytes(), json.as_bytes()].concat()
}

/// A header field: printable ASCII without spaces, at most `max` characters, `-` when empty.
fn header_field(value: &str, max: usize) -> String {
    let field: String = value.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// A structured data parameter value: `"`, `\` and `]` escaped with a backslash.
fn escape_param(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(rating: &str, name: &str) -> Trace {
        let input = serde_json::json!({
            "trace_id": "5f1c1b9e-3c7a-4a51-9a53-3f7d5e1b2a10", "trace_name": name, "trace_rating": rating,
            "trace_type": "ApiCall", "service_type": "marketplace", "resource_type": "Order",
            "time": 1_793_783_142_123_i64, "message": "a \"quoted\" ] message",
            "user": {"id": "u1", "name": "alice", "domain": {"id": "d1", "name": "acme"}},
        });
        cts_model::TraceInput::from_json(&input.to_string()).unwrap().into_trace("p1", 1_793_783_142_123).unwrap()
    }

    #[test]
    fn messages_follow_rfc_5424() {
        let message = syslog_message(&trace("warning", "createOrder"), "cts-node-1");
        let text = String::from_utf8(message).unwrap();
        let expected_head = "<108>1 2026-11-04T09:05:42.123Z cts-node-1 cts - createOrder \
             [cts@32473 trace_id=\"5f1c1b9e-3c7a-4a51-9a53-3f7d5e1b2a10\" project_id=\"p1\" service_type=\"marketplace\"] \u{feff}";
        assert!(text.starts_with(expected_head), "{text}");
        let json: serde_json::Value = serde_json::from_str(&text[expected_head.len()..]).unwrap();
        assert_eq!(json["trace_id"], "5f1c1b9e-3c7a-4a51-9a53-3f7d5e1b2a10");
        let priorities: Vec<_> = ["normal", "warning", "incident"]
            .map(|rating| String::from_utf8(syslog_message(&trace(rating, "x"), "h")).unwrap()[..5].to_owned())
            .to_vec();
        assert_eq!(priorities, ["<110>", "<108>", "<106>"]);
    }

    #[test]
    fn header_fields_and_parameters_are_made_safe() {
        assert_eq!(header_field("", 32), "-");
        assert_eq!(header_field("a b\tc", 32), "abc");
        assert_eq!(header_field(&"n".repeat(40), 32).len(), 32);
        assert_eq!(escape_param(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
    }
}
