//! NewsML-G2 newsItems (roxmltree), after the encoding decoder: items or a format error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = newsroom_formats::parse(data, "newsml-g2", "fuzz");
});
