//! RSS, Atom and JSON Feed (feed-rs), whatever the bytes: items or a format error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = newsroom_formats::parse(data, "rss", "fuzz");
});
