//! The seed's Event, EventType and EventMetadata, exactly as the template
//! declares them. Reads one JSON text per line on stdin, deserialises it into
//! `Event` and writes serde_json's serialisation of it, one line each; a line
//! serde rejects is written as `ERR <serde's message>`.
use std::io::{self, BufRead, BufWriter, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub event_id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub event_type: EventType,
    pub payload: serde_json::Value,
    pub metadata: EventMetadata,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum EventType {
    // Authentication events
    UserLoggedIn,
    UserLoggedOut,
    TokenRefreshed,
    SessionExpired,

    // Session events
    SessionCreated,
    SessionInvalidated,
    SessionExtended,

    // Workflow events
    WorkflowStarted,
    WorkflowStateChanged,
    WorkflowCompleted,
    WorkflowFailed,

    // Custom events
    Custom(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventMetadata {
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub source: String,
}

fn main() {
    let stdin = io::stdin();
    let mut out = BufWriter::new(io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line.expect("stdin is UTF-8 lines");
        match serde_json::from_str::<Event>(&line) {
            Ok(event) => writeln!(out, "{}", serde_json::to_string(&event).expect("serialises")),
            Err(err) => writeln!(out, "ERR {}", err),
        }
        .expect("stdout");
    }
    out.flush().expect("stdout");
}
