//! Export of audit events for auditors: JSONL (one object per line) or RFC 4180 CSV with a
//! header row. Rows carry every stored field, the hash in hex, so an export can be checked
//! against the chain.

use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::store::audit::EventRow;

/// Columns of an exported event, in order.
const COLUMNS: [&str; 17] = [
    "seq",
    "id",
    "time",
    "actor_kind",
    "actor_id",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "status_code",
    "request_id",
    "client_address",
    "user_agent",
    "phi",
    "details",
    "tenant_id",
    "hash",
];

/// How exported rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values, header first.
    Csv,
}

/// Turns events into export lines.
#[derive(Debug)]
pub struct ExportRows {
    format: ExportFormat,
    header_sent: bool,
}

impl ExportRows {
    /// Rows in `format`.
    pub fn new(format: ExportFormat) -> Self {
        Self {
            format,
            header_sent: false,
        }
    }

    /// The lines for `event` (for CSV, the header before the first event), each ending in a
    /// newline.
    pub fn lines(&mut self, event: &EventRow) -> Vec<String> {
        let values = values(event);
        match self.format {
            ExportFormat::Jsonl => {
                let object: serde_json::Map<String, serde_json::Value> = COLUMNS
                    .iter()
                    .zip(values)
                    .map(|(name, value)| ((*name).to_owned(), value))
                    .collect();
                vec![format!("{}\n", serde_json::Value::Object(object))]
            }
            ExportFormat::Csv => {
                let mut lines = Vec::with_capacity(2);
                if !self.header_sent {
                    self.header_sent = true;
                    lines.push(csv_line(COLUMNS.iter().map(|c| (*c).to_owned())));
                }
                lines.push(csv_line(values.into_iter().map(|value| match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                })));
                lines
            }
        }
    }

    /// For CSV, the header when no event was exported (so an empty export still names its
    /// columns).
    pub fn trailer(&mut self) -> Option<String> {
        (self.format == ExportFormat::Csv && !self.header_sent).then(|| {
            self.header_sent = true;
            csv_line(COLUMNS.iter().map(|c| (*c).to_owned()))
        })
    }
}

fn values(event: &EventRow) -> [serde_json::Value; 17] {
    [
        json!(event.seq),
        json!(event.id),
        json!(event.occurred_at.format(&Rfc3339).unwrap_or_default()),
        json!(event.actor_kind),
        json!(event.actor_id),
        json!(event.action),
        json!(event.resource_type),
        json!(event.resource_id),
        json!(event.outcome),
        json!(event.status_code),
        json!(event.request_id),
        json!(event.client_address),
        json!(event.user_agent),
        json!(event.phi),
        event.details.0.clone(),
        json!(event.tenant_id),
        json!(hex::encode(&event.hash)),
    ]
}

fn csv_line(fields: impl Iterator<Item = String>) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(fields.collect::<Vec<_>>());
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EventRow {
        EventRow {
            tenant_id: uuid::Uuid::nil(),
            seq: 7,
            id: uuid::Uuid::nil(),
            occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            actor_kind: "user".into(),
            actor_id: "u1".into(),
            action: "/codexcontinue.v1.AuthService/WhoAmI".into(),
            resource_type: "session".into(),
            resource_id: String::new(),
            outcome: "success".into(),
            status_code: 0,
            request_id: "r1".into(),
            client_address: "127.0.0.1".into(),
            user_agent: "agent, \"quoted\"".into(),
            phi: false,
            details: sqlx::types::Json(json!({"a": 1})),
            hash: vec![0xab; 32],
        }
    }

    #[test]
    fn jsonl_is_one_object_per_line_with_every_column() {
        let mut rows = ExportRows::new(ExportFormat::Jsonl);
        let lines = rows.lines(&event());
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with('\n'));
        let parsed: serde_json::Value = serde_json::from_str(lines[0].trim_end()).unwrap();
        assert_eq!(parsed["seq"], 7);
        assert_eq!(parsed["details"]["a"], 1);
        assert_eq!(parsed["hash"], "ab".repeat(32));
        assert_eq!(parsed.as_object().unwrap().len(), COLUMNS.len());
        assert_eq!(rows.trailer(), None);
    }

    #[test]
    fn csv_has_a_header_once_and_quotes_fields() {
        let mut rows = ExportRows::new(ExportFormat::Csv);
        let first = rows.lines(&event());
        let second = rows.lines(&event());
        assert_eq!(first.len(), 2);
        assert_eq!(second.len(), 1);
        assert!(first[0].starts_with("seq,id,time,"));
        assert!(first[1].contains("\"agent, \"\"quoted\"\"\""));
        assert!(first[1].contains("\"{\"\"a\"\":1}\""));
        assert!(first[1].ends_with("\r\n"));
        assert_eq!(rows.trailer(), None);
        let mut empty = ExportRows::new(ExportFormat::Csv);
        assert!(empty.trailer().unwrap().starts_with("seq,id"));
    }
}
