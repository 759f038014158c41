//! NINJS 1.x and 2.0 JSON, after the encoding decoder: items or a format error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = newsroom_formats::parse(data, "ninjs", "fuzz");
});
