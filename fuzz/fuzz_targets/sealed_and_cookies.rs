//! cargo-fuzz entry for `roomgate::fuzzing::sealed_and_cookies` (the properties live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomgate::fuzzing::sealed_and_cookies(data));
