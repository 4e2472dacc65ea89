# shellcheck shell=bash
# Shared by scripts/setup, scripts/run and scripts/test: sourced, never run.

# Tools that setup installs live here; make sure they are found even in a fresh login shell.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.local/bin:/usr/local/bin:$PATH"

# Prints a step banner so logs show which step failed.
step() {
    if [[ -t 2 ]]; then
        printf '\n\033[1m==> %s\033[0m\n' "$*" >&2
    else
        printf '\n==> %s\n' "$*" >&2
    fi
}

note() {
    printf '    %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Runs a command and prints how long it took, so slow steps show up in CI logs.
timed() {
    local start=$SECONDS
    "$@"
    note "took $((SECONDS - start)) s"
}
