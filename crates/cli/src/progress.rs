//! Progress bars on long operations (`replay`, `demo`, `alert --watch`).
//!
//! Drawn on standard error, and only when it is a terminal and the output is text: a script
//! reading `--output json`, or a log collecting standard error, sees no bar and no escape
//! codes. indicatif does the drawing (rate-limited redraws, ETA, terminal width): a
//! hand-written bar would get those wrong.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps; hidden unless `text` output goes with a terminal on standard error.
pub fn bar(len: u64, text: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target(text));
    bar.set_style(
        ProgressStyle::with_template(
            // The bar takes what the terminal width leaves: no wrapping on a narrow one.
            "{spinner} {msg:28!} [{wide_bar}] {human_pos}/{human_len} {elapsed} (eta {eta})",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn target(text: bool) -> ProgressDrawTarget {
    if text && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_never_draws_a_bar() {
        let bar = bar(10, false);
        assert!(bar.is_hidden());
        bar.inc(5);
        assert_eq!(bar.position(), 5, "a hidden bar still counts");
    }
}
