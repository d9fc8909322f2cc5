//! Integration tests of the wscope endpoints, one binary (short link times).

#[path = "all/util.rs"]
mod util;

#[path = "all/blocking.rs"]
mod blocking;
#[path = "all/broadcast.rs"]
mod broadcast;
#[path = "all/deflate.rs"]
mod deflate;
#[cfg(feature = "http2")]
#[path = "all/h2.rs"]
mod h2;
#[path = "all/handshake.rs"]
mod handshake;
#[path = "all/limits.rs"]
mod limits;
#[path = "all/proxy.rs"]
mod proxy;
#[path = "all/seeds.rs"]
mod seeds;
#[path = "all/send.rs"]
mod send;
#[path = "all/simple.rs"]
mod simple;
#[path = "all/streams.rs"]
mod streams;
#[path = "all/tls.rs"]
mod tls;
#[path = "all/tokio.rs"]
mod tokio_driver;
#[cfg(all(target_os = "linux", feature = "io-uring"))]
#[path = "all/uring.rs"]
mod uring;
#[cfg(feature = "hyper")]
#[path = "all/web.rs"]
mod web;
