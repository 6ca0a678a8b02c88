//! `cts`: the Cloud Trace Service command. Thin glue over the library crates:
//! it parses arguments, resolves configuration and calls into them.

mod admin;
mod allocator;
mod config;
mod data_dir;
mod demo;
mod export;
mod import;
mod koogallery;
mod manual;
mod serve;
mod sql;
mod traces;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cts", version, about = "Cloud Trace Service: record, store, query and verify operation traces")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the service: the CTS v3 API, and the unsigned `/health`, `/ready` and `/metrics`.
    Serve(serve::ServeArgs),
    /// Bulk-load JSON Lines or CTS trace files (`.json`, `.json.gz`, `.parquet`, `.enc`) into a data directory.
    Import {
        #[command(flatten)]
        settings: config::RawSettings,
        /// The project of traces that do not name one (default: the data directory's project).
        #[arg(long)]
        project_id: Option<String>,
        /// Files to load.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Query traces from a running cts with ListTraces filters.
    Traces(traces::TracesArgs),
    /// Run one SQL query (a SELECT over the `traces` table) on a running cts built with `--features sql`.
    Sql(sql::SqlArgs),
    /// Export every trace of a filter from a running cts as CSV, JSON or Parquet (no row cap).
    Export(export::ExportArgs),
    /// Run the benchmark against PostgreSQL on the same data.
    Bench(cts_bench::BenchArgs),
    /// Run cts with a seeded KooGallery workload and show what auditors see.
    Demo(demo::DemoArgs),
    /// The KooGallery marketplace service, reporting its operations to cts.
    Koogallery(koogallery::KooGalleryArgs),
    /// Manage domains, projects, users, roles and access keys of a data directory (JSON output).
    Admin(admin::AdminArgs),
    /// Verify the ledger: a whole data directory (server stopped), or one trace offline.
    Verify(verify::VerifyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on standard output.
    Completions { shell: clap_complete::Shell },
    /// Write the man pages (`cts.1` and one per command) into a directory.
    Man {
        /// Where the pages go (created if missing).
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    allocator::tune();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CTS_LOG").unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr);
    // `CTS_LOG_FORMAT=json`: one JSON object per event, fields and spans included, for log shippers.
    match std::env::var("CTS_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().with_current_span(true).init(),
        Ok("text") | Err(_) => logs.init(),
        Ok(other) => anyhow::bail!("CTS_LOG_FORMAT must be json or text, not {other:?}"),
    }
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args),
        Command::Import { settings, project_id, files } => {
            let config = settings.resolve()?;
            import::run(&config, project_id, &files)
        }
        Command::Traces(args) => traces::run(args),
        Command::Export(args) => export::run(args),
        Command::Sql(args) => sql::run(args),
        Command::Bench(args) => cts_bench::run_cli(args),
        Command::Demo(args) => demo::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Koogallery(args) => koogallery::run(args),
        Command::Completions { shell } => manual::completions(shell, <Cli as clap::CommandFactory>::command()),
        Command::Man { out_dir } => manual::man_pages(<Cli as clap::CommandFactory>::command(), &out_dir),
    }
}
