//! `cts traces`: ListTraces from the command line, against a running cts,
//! as a table or as JSON Lines (`--json`).

use anyhow::{bail, Context};
use clap::Args;
use cts_client::{Client, Credentials};
use cts_model::Trace;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct TracesArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Traces per page (at most 200).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Follow the markers through every page instead of printing the first.
    #[arg(long)]
    all: bool,
    /// Print one JSON trace per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Which cts to ask, and as whom.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// The cts API to ask.
    #[arg(long, env = "CTS_ENDPOINT", default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// Access key; with the secret key and project id, taken from the data directory's admin credentials when unset.
    #[arg(long, env = "CTS_ACCESS_KEY")]
    access_key: Option<String>,
    #[arg(long, env = "CTS_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    #[arg(long, env = "CTS_PROJECT_ID")]
    project_id: Option<String>,
    /// The data directory whose admin credentials to use.
    #[arg(long, env = "CTS_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// ListTraces's filters and time window. A filter value ending in `*` matches values starting with the rest.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Start of the window: UTC milliseconds, RFC 3339, or a duration back from now (`1h`, `7d`).
    #[arg(long)]
    from: Option<String>,
    /// End of the window: UTC milliseconds or RFC 3339 (default now).
    #[arg(long)]
    to: Option<String>,
    /// `system` or `data`.
    #[arg(long)]
    trace_type: Option<String>,
    #[arg(long)]
    tracker_name: Option<String>,
    #[arg(long)]
    service_type: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    resource_id: Option<String>,
    #[arg(long)]
    resource_name: Option<String>,
    #[arg(long)]
    resource_type: Option<String>,
    #[arg(long)]
    trace_id: Option<String>,
    #[arg(long)]
    trace_name: Option<String>,
    /// `normal`, `warning` or `incident`.
    #[arg(long)]
    trace_rating: Option<String>,
    #[arg(long)]
    access_key_id: Option<String>,
    #[arg(long)]
    enterprise_project_id: Option<String>,
    /// Compare the filters' values without regard to case.
    #[arg(long)]
    ignore_case: bool,
    /// Free text: words or "quoted phrases" that must each occur in the request, response or message.
    #[arg(long)]
    q: Option<String>,
}

impl ConnectionArgs {
    /// A signed client of the endpoint.
    pub fn client(&self) -> anyhow::Result<Client> {
        Client::new(&self.endpoint, credentials(self)?).context("creating the API client")
    }
}

impl FilterArgs {
    /// The query parameters of the filter, times resolved against `now_ms`.
    pub fn params(&self, now_ms: i64) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut params = Vec::new();
        if let Some(from) = &self.from {
            params.push(("from", parse_time("from", from, now_ms)?.to_string()));
        }
        if let Some(to) = &self.to {
            params.push(("to", parse_time("to", to, now_ms)?.to_string()));
        }
        let filters = [
            ("trace_type", &self.trace_type),
            ("tracker_name", &self.tracker_name),
            ("service_type", &self.service_type),
            ("user", &self.user),
            ("resource_id", &self.resource_id),
            ("resource_name", &self.resource_name),
            ("resource_type", &self.resource_type),
            ("trace_id", &self.trace_id),
            ("trace_name", &self.trace_name),
            ("trace_rating", &self.trace_rating),
            ("access_key_id", &self.access_key_id),
            ("enterprise_project_id", &self.enterprise_project_id),
        ];
        params.extend(filters.into_iter().filter_map(|(name, value)| value.clone().map(|v| (name, v))));
        if self.ignore_case {
            params.push(("ignore_case", "true".to_owned()));
        }
        if let Some(q) = &self.q {
            params.push(("q", q.clone()));
        }
        Ok(params)
    }
}

pub fn run(args: TracesArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(list(args))
}

async fn list(args: TracesArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let mut params: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    params.extend(args.filter.params(cts_model::now_ms())?);

    let mut printed = 0usize;
    if !args.json {
        println!(
            "{}",
            table_row(["TIME (UTC)", "TRACE NAME", "RESOURCE TYPE", "RESOURCE NAME", "RATING", "USER", "SOURCE IP"])
        );
    }
    loop {
        let page = client.list_traces(&params).await?;
        for trace in &page.traces {
            if args.json {
                println!("{}", serde_json::to_string(trace)?);
            } else {
                println!("{}", summary_row(trace));
            }
        }
        printed += page.traces.len();
        match page.meta_data.marker {
            Some(marker) if args.all => {
                params.retain(|(name, _)| *name != "next");
                params.push(("next", marker));
            }
            Some(_) => {
                eprintln!("({printed} traces shown; more exist: use --all or narrow the filters)");
                break;
            }
            None => break,
        }
    }
    if !args.json {
        eprintln!("{printed} traces");
    }
    Ok(())
}

fn credentials(args: &ConnectionArgs) -> anyhow::Result<Credentials> {
    if let (Some(access_key), Some(secret_key), Some(project_id)) =
        (&args.access_key, &args.secret_key, &args.project_id)
    {
        return Ok(Credentials {
            access_key: access_key.clone(),
            secret_key: secret_key.clone(),
            project_id: project_id.clone(),
        });
    }
    let admin = cts_iam::AdminCredentials::load(&args.data_dir).with_context(|| {
        format!(
            "no --access-key/--secret-key/--project-id given and no admin credentials readable in {}",
            args.data_dir.display()
        )
    })?;
    Ok(Credentials {
        access_key: args.access_key.clone().unwrap_or(admin.access_key),
        secret_key: args.secret_key.clone().unwrap_or(admin.secret_key),
        project_id: args.project_id.clone().unwrap_or(admin.project_id),
    })
}

/// UTC milliseconds, RFC 3339, or (for `from`) a duration back from now.
fn parse_time(name: &str, text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(now_ms - ago.as_millis() as i64);
    }
    bail!("--{name}: {text:?} is not UTC milliseconds, an RFC 3339 time, or a duration such as 1h")
}

pub fn summary_row(trace: &Trace) -> String {
    let time = chrono::DateTime::from_timestamp_millis(trace.time)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| trace.time.to_string());
    table_row([
        &time,
        &trace.trace_name,
        &trace.resource_type,
        trace.resource_name.as_deref().unwrap_or("-"),
        trace.trace_rating.as_str(),
        trace.user_name().unwrap_or("-"),
        trace.source_ip.as_deref().unwrap_or("-"),
    ])
}

fn table_row(cells: [&str; 7]) -> String {
    format!(
        "{:<23}  {:<26}  {:<19}  {:<28}  {:<8}  {:<16}  {}",
        cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_millis_rfc3339_or_durations_back() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("from", "1700000000000", now).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("from", "2023-11-14T22:13:20Z", now).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("from", "1h", now).unwrap(), now - 3_600_000);
        assert!(parse_time("from", "yesterday", now).unwrap_err().to_string().starts_with("--from"));
    }
}
