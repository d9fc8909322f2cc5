#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wscope::fuzzing::fuzz_direct_reads(data));
