//! `--log-format json`: one object per line, `{"level":…,"msg":…,"time":…}`, the shape
//! runc writes and containerd's shim reads back to report a runtime's error.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct RuncJson;

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

impl<S, N> FormatEvent<S, N> for RuncJson
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut msg = Message::default();
        event.record(&mut msg);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let line = serde_json::json!({
            "level": level,
            "msg": msg.0,
            "time": crate::container::rfc3339_nano(std::time::SystemTime::now()),
        });
        writeln!(writer, "{line}")
    }
}
