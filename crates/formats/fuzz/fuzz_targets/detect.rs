//! Format detection and the encoding decoder: any bytes, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = newsroom_formats::detect(data);
    let _ = newsroom_formats::decode(data);
});
