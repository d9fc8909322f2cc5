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
    /// Run a WebSocket server: `--echo` echoes every message; without it, stdin lines go to
    /// every connected client and received messages are printed (websocat's `-s`).
    Serve => serve,
    /// Connect to a WebSocket server: stdin lines become messages, received messages are printed.
    Connect => connect,
    /// Analyse pcap/pcapng captures passively: WebSocket sessions, messages, Zeek logs.
    Inspect => inspect,
    /// Decode a file of raw frames: frames, messages and anomalies (`--json` for machines).
    Parse => parse,
}

/// wscope: WebSocket (RFC 6455) endpoints and analysis: a server and a client for the
/// terminal, a passive analyser of captures and a decoder of raw frames.
#[derive(Parser, Debug)]
#[command(
    name = "wscope",
    version,
    after_help = "Examples:\n  \
        wscope serve --echo --port 9001           an echo server on ws://127.0.0.1:9001\n  \
        wscope serve --port 9001                  stdin lines to the clients, messages to stdout\n  \
        wscope connect ws://127.0.0.1:9001/       stdin lines out, received messages printed\n  \
        wscope inspect capture.pcapng             WebSocket sessions and messages in a capture\n  \
        wscope parse frames.bin                   decode a file of raw frames\n\n\
        'wscope help <COMMAND>' shows the options of a command."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    Cli::parse().command.run()
}
