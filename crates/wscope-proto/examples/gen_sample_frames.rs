//! Writes `examples/sample-frames.bin`, the frame stream `parse_frames` decodes.
//!
//! ```text
//! cargo run -p wscope-proto --example gen_sample_frames -- crates/wscope-proto/examples/sample-frames.bin
//! ```
//!
//! The output is deterministic; `tests/all/sample_frames.rs` checks that the committed file is
//! what this writes.

#[path = "support/sample_frames.rs"]
mod sample_frames;

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: gen_sample_frames <output file>");
        return ExitCode::from(2);
    };
    let wire = sample_frames::sample_frames();
    if let Err(e) = std::fs::write(&path, &wire) {
        eprintln!("{}: {e}", path.to_string_lossy());
        return ExitCode::FAILURE;
    }
    println!("wrote {} bytes to {}", wire.len(), path.to_string_lossy());
    ExitCode::SUCCESS
}
