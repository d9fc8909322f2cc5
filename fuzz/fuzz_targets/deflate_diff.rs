#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wscope_proto::fuzzing::fuzz_deflate_diff(data));
