//! What `ImportFeed` does with a document and no hint: detect, decode, parse.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = newsroom_formats::parse(data, "", "fuzz");
});
