//! cargo-fuzz entry for `roomgate::fuzzing::webhook` (the properties live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomgate::fuzzing::webhook(data));
