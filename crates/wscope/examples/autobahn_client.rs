//! Autobahn TestSuite client (for `kosoku -m fuzzingserver`): runs every case against the
//! fuzzing server, echoing each message, then asks it to write the reports.
//!
//! ```sh
//! kosoku -m fuzzingserver -x '12.*' -x '13.*' 127.0.0.1:9001 &
//! cargo run --release -p wscope --example autobahn_client -- ws://127.0.0.1:9001
//! ```

use futures_util::StreamExt;
use wscope::config::{ClientConfig, DeflateConfig};
use wscope::tokio::{connect_async, connect_with};
use wscope::{Error, Message};

const AGENT: &str = "wscope";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let (mut ws, _) = connect_async(&format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.next().await {
        Some(Ok(Message::Text(t))) => t.trim().parse().unwrap_or(0),
        other => panic!("no case count: {other:?}"),
    };
    drop(ws);
    eprintln!("{count} cases");
    for case in 1..=count {
        if let Err(e) = run_case(&base, case).await {
            eprintln!("case {case}: {e}");
        }
    }
    let (mut ws, _) = connect_async(&format!("{base}/updateReports?agent={AGENT}")).await?;
    while let Some(m) = ws.next().await {
        if m.is_err() {
            break;
        }
    }
    Ok(())
}

async fn run_case(base: &str, case: u32) -> Result<(), Error> {
    let url = format!("{base}/runCase?case={case}&agent={AGENT}");
    // Offer permessage-deflate unless WSCOPE_NO_DEFLATE is set (cases 12.* and 13.* need it).
    let mut cfg = ClientConfig::from_url(&url)?;
    if std::env::var_os("WSCOPE_NO_DEFLATE").is_none() {
        // Announce client_no_context_takeover (RFC 7692 section 7.1.1.1): the fuzzing server
        // only asks a client that announced it to reset its context (cases 13.2, 13.5, 13.6).
        cfg = cfg.deflate(DeflateConfig::default().client_no_context_takeover(true));
    }
    let mut ws = connect_with(&cfg).await?;
    let mut buf = Vec::new();
    while let Some(kind) = ws.recv_into(&mut buf).await {
        let kind = kind?;
        if ws.is_write_full() {
            ws.flush_writes().await?;
        }
        match ws.feed_data(kind, &mut buf) {
            Ok(()) | Err(Error::AlreadyClosed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
