//! `kafka-observer`: one binary, several roles chosen by subcommand. Wiring only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kafka_observer::cli::{check, consume, lag, observe, produce, CliError};
use kafka_observer::config::{self, ProcessEnv};

#[derive(Debug, Parser)]
#[command(
    name = "kafka-observer",
    version,
    about = "Runs Kafka consumers only when there is work for them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch consumer-group lag and start consumer job runs when there is work
    Observe(Box<observe::ObserveArgs>),
    /// Join a consumer group, handle its records, exit when idle
    Consume(Box<consume::ConsumeArgs>),
    /// Show per-partition offsets and lag of consumer groups
    Lag(Box<lag::LagArgs>),
    /// Write records from stdin or a file to a topic (like kcat -P)
    Produce(Box<produce::ProduceArgs>),
    /// Validate a kafkadata mapping (offline, and against the cluster with --bootstrap)
    Check(Box<check::CheckArgs>),
    /// Internal: how the local launcher starts a consumer, so it dies with the observer
    #[command(name = "run-child", hide = true)]
    RunChild(RunChildArgs),
}

#[derive(Debug, clap::Args)]
struct RunChildArgs {
    /// The observer's pid: the consumer does not start if it is no longer the parent
    #[arg(long)]
    parent: u32,
    /// The consumer program and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<std::ffi::OsString>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::RunChild(a) = &cli.command {
        let why = kafka_observer::launch::exec_child(a.parent, &a.command[0], &a.command[1..]);
        eprintln!("error: {why}");
        return ExitCode::from(127);
    }
    if let Err(e) = init_logging(match cli.command {
        Command::Observe(_) | Command::Consume(_) => "info",
        _ => "warn",
    }) {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result: Result<(), CliError> = runtime.block_on(async {
        match cli.command {
            Command::Observe(args) => observe::run(*args).await,
            Command::Consume(args) => consume::run(*args).await,
            Command::Lag(args) => lag::run(*args).await,
            Command::Produce(args) => produce::run(*args).await,
            Command::Check(args) => check::run(*args).await,
            // Handled (and exec-ed or failed) before the runtime starts.
            Command::RunChild(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs go to stderr; `RUST_LOG` or `LOG_LEVEL` set the filter (default per role); a filter
/// that cannot be read is a usage error naming its variable.
fn init_logging(default: &str) -> Result<(), CliError> {
    let (filter, origin) = match (
        config::var(&ProcessEnv, "RUST_LOG")?,
        config::var(&ProcessEnv, "LOG_LEVEL")?,
    ) {
        (Some(f), _) => (f, "RUST_LOG"),
        (None, Some(f)) => (f, "LOG_LEVEL"),
        (None, None) => (default.to_string(), "LOG_LEVEL"),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter.trim()).map_err(|e| {
        kafka_observer::cli::invalid(
            origin,
            format!(
                "'{}' is not a log filter ({e}); use error, warn, info, debug or trace",
                filter.trim()
            ),
        )
    })?;
    // Colours only on a terminal: log files and Code Engine's log view get plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}
