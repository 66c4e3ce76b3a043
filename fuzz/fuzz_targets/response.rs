//! cargo-fuzz entry for `roomgate::fuzzing::response` (the properties live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomgate::fuzzing::response(data));
