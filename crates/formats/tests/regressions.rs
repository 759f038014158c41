//! Inputs that once crashed a parser, or were written to try (and every crash `just fuzz`
//! finds is added here with its fix): each, through every format hint and detection, is an
//! answer — items or a format error — never a panic.

use std::path::Path;

#[test]
fn every_regression_input_is_answered_not_a_crash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/regressions") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for hint in ["", "rss", "atom", "jsonfeed", "ninjs", "newsml-g2"] {
            let answer = std::panic::catch_unwind(|| newsroom_formats::parse(&bytes, hint, "s"));
            assert!(
                answer.is_ok(),
                "{} with hint {hint:?} panicked",
                path.display()
            );
        }
        assert!(
            std::panic::catch_unwind(|| newsroom_formats::detect(&bytes)).is_ok(),
            "{}: detect panicked",
            path.display()
        );
        inputs += 1;
    }
    assert!(inputs >= 7, "the regression inputs are there ({inputs})");
}
