#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wscope_inspect::fuzzing::fuzz_http2(data);
});
