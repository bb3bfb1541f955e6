//! Logging: JSON lines (default, for clusters) or human-readable text (`LOG_FORMAT=text`),
//! filtered by RUST_LOG. Each request's span carries its request id and route template.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_sessions=warn";

/// Installs the global subscriber, logging to stderr (stdout is for the CLI's own output).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = format == LogFormat::Text && std::io::stderr().is_terminal();
    // Tests may initialise more than once; the first subscriber stays.
    let _ = subscriber(format, filter, ansi, std::io::stderr).try_init();
}

/// The subscriber `init` installs, writing to any writer (tests capture the output).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.finish()),
    }
}
