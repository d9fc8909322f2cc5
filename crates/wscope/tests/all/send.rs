//! The endpoints and what they hand out are `Send`: a connection opened in one thread is
//! served in another, and a tokio task holding one can be spawned. A type that stops being
//! `Send` fails to compile here.

fn send<T: Send>() {}

#[test]
fn endpoints_messages_and_errors_can_move_to_another_thread() {
    send::<wscope::blocking::WebSocket<std::net::TcpStream>>();
    send::<wscope::blocking::WebSocket>();
    send::<wscope::blocking::SharedWebSocket>();
    send::<wscope::simple::Websock>();
    send::<wscope::tokio::WebSocketStream<tokio::net::TcpStream>>();
    send::<wscope::tokio::Broadcast>();
    send::<wscope::tokio::Member>();
    #[cfg(feature = "http2")]
    send::<wscope::h2::H2Stream>();
    #[cfg(feature = "http2")]
    send::<wscope::h2::Http2Client>();
    send::<wscope::Message>();
    send::<wscope::PreparedMessage>();
    send::<wscope::Error>();
}
