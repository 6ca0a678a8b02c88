//! `cts export`: every trace of a filter from a running cts, as CSV, JSON or Parquet, streamed to a
//! file or standard output (`GET /v3/{project_id}/traces/export` through the signed client).

use crate::traces::{ConnectionArgs, FilterArgs};
use anyhow::Context;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Parquet,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// The export format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Where to write (default: standard output). Written to a temporary name and renamed when complete.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(export(args))
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let mut params = args.filter.params(cts_model::now_ms())?;
    let format = args.format.to_possible_value().expect("every format has a name").get_name().to_owned();
    params.push(("format", format));
    let mut response = client.export(&params).await?;
    let (mut out, partial): (Box<dyn Write>, Option<PathBuf>) = match &args.output {
        Some(path) => {
            let partial = path.with_extension("partial");
            let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
            (Box::new(std::io::BufWriter::new(file)), Some(partial))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.context("the export was cut short")? {
        out.write_all(&chunk)?;
        bytes += chunk.len() as u64;
    }
    out.flush()?;
    drop(out);
    if let (Some(partial), Some(path)) = (partial, &args.output) {
        std::fs::rename(&partial, path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        eprintln!("{bytes} bytes written to {}", path.display());
    }
    Ok(())
}
