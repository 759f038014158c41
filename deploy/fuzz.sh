#!/usr/bin/env bash
# `just fuzz [SECONDS]`: runs every cargo-fuzz target of crates/formats (format detection and
# decoding, RSS/Atom/JSON Feed, NINJS, NewsML-G2, and the whole no-hint import path) for
# SECONDS each (default 60), from a seed corpus made of ../shared/data. A crash, a panic, a
# timeout or an out-of-memory fails the run and leaves its input in
# crates/formats/fuzz/artifacts/<target>/ — add it to crates/formats/tests/regressions/ with the
# fix. Needs the nightly toolchain (libFuzzer's instrumentation) and cargo-fuzz, installed from
# crates.io when missing. CI runs a short version (`just ci`: 10 s a target).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
data="${NEWSROOM_DATA:-$(cd .. && pwd)/shared/data}"
log() { printf '\033[1mfuzz:\033[0m %s\n' "$*" >&2; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "the nightly toolchain is missing (rustup toolchain install nightly): cargo fuzz needs it"
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (once)"
  cargo +nightly install cargo-fuzz --locked >/dev/null
fi

fuzz=crates/formats/fuzz
seed() { # target, files…
  local dir="$fuzz/corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dir/" ; done
}
[ -d "$data" ] || { log "no test data at $data (NEWSROOM_DATA)"; exit 1; }
seed feed "$data"/feeds/*
seed ninjs "$data"/seed-story.ninjs.json
seed newsml "$data"/newsml/*
seed detect "$data"/feeds/* "$data"/newsml/* "$data"/seed-story.ninjs.json
seed any "$data"/feeds/* "$data"/newsml/* "$data"/seed-story.ninjs.json
# Past regressions start every run.
for t in feed ninjs newsml detect any; do seed "$t" crates/formats/tests/regressions/*; done

targets=(detect feed ninjs newsml any)
log "building ${#targets[@]} targets (nightly, libFuzzer, address sanitizer)"
(cd "$fuzz" && cargo +nightly fuzz build -O >/dev/null)
failed=()
for t in "${targets[@]}"; do
  log "$t: ${seconds}s"
  rm -rf "$fuzz/artifacts/$t"
  if ! (cd "$fuzz" && cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss|==|SUMMARY|Test unit written|thread .* panicked)" ); then
    :
  fi
  if compgen -G "$fuzz/artifacts/$t/*" >/dev/null; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  log "FAILED: ${failed[*]} — inputs in $fuzz/artifacts/"
  exit 1
fi
log "no crash in ${#targets[@]} targets × ${seconds}s"
