//! `include/websock.h` is generated from `src/` (`lib.rs` and the modules it declares) with
//! cbindgen (settings in `cbindgen.toml`) and checked in. This test regenerates it and fails
//! when the checked-in copy differs; `WSCOPE_BLESS=1 cargo test -p wscope-ffi --test header`
//! rewrites it.

use std::path::Path;

#[test]
fn checked_in_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = dir.join("../../include/websock.h");
    if std::env::var_os("WSCOPE_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write include/websock.h");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "include/websock.h is stale: run `WSCOPE_BLESS=1 cargo test -p wscope-ffi --test header` \
         and commit the result"
    );
    // The seed's names are all there.
    let text = String::from_utf8(fresh).expect("UTF-8 header");
    for name in [
        "websock_handle_t",
        "websock_config_t",
        "websoc_hndshk_hdr_t",
        "ssl_wrap_cfg_t",
        "websock_msg_hdr_t",
        "#define WEBSOCK_MAX_HNDSHK_HDRS 10",
        "websock_handle_t websock_open(struct websock_config_t *cfg);",
        "void websock_close(websock_handle_t h);",
        "int websock_send_text(websock_handle_t handle, char *payload, int len);",
        "int websock_send_binary(websock_handle_t handle, char *payload, int len);",
        "int websock_recv(websock_handle_t handle,",
        "LWS_CLOSE_STATUS_NORMAL = 1000",
    ] {
        assert!(text.contains(name), "{name} missing from the header");
    }
}
