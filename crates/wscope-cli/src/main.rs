//! `wscope`: the command-line tool of the wscope WebSocket toolkit.
//!
//! Subcommands live in `cmd/<name>.rs`, each with an `Args` struct (clap) and a
//! `run(Args) -> ExitCode`. Adding one is one line in the `commands!` list below plus its
//! module in `cmd/mod.rs`.

use std::process::ExitCode;

use clap::Parser;

mod cmd;

/// Declares the `Command` enum and its dispatch from `Variant => module` lines.
macro_rules! commands {
    ($($(#[$meta:meta])* $variant:ident => $module:ident,)*) => {
        /// The subcommands.
        #[derive(clap::Subcommand, Debug)]
        enum Command {
            $($(#[$meta])* $variant(cmd::$module::Args),)*
        }

        impl Command {
            fn run(self) -> ExitCode {
                match self {
                    $(Self::$variant(args) => cmd::$module::run(args),)*
                }
            }
        }
    };
}

commands! {
    /// Run a WebSocket server (`--echo`: the echo server used by Autobahn and benchmarks).
    Serve => serve,
    /// Connect to a WebSocket server: stdin lines become messages, received messages are printed.
    Connect => connect,
    /// Analyse pcap/pcapng captures passively: WebSocket sessions, messages, Zeek logs.
    Inspect => inspect,
    /// Decode a file of raw frames: frames, messages and anomalies (`--json` for machines).
    Parse => parse,
}

/// wscope: WebSocket (RFC 6455) endpoints and analysis.
#[derive(Parser, Debug)]
#[command(name = "wscope", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    Cli::parse().command.run()
}
