# shellcheck shell=bash
# Shared by scripts/setup, run, test and fuzz: sourced, never run.

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

# Runs every cargo-fuzz target under shared/fuzz for $1 seconds each. Inputs that once crashed
# (fuzz/regressions/<target>) and hand-made seeds (fuzz/seeds/<target>) are replayed first; new
# inputs go to fuzz/corpus/<target> (git-ignored), so longer runs build on earlier ones.
fuzz_all() {
    local seconds=$1 sanitizer=${2:-address} targets target dir
    if ! rustup toolchain list | grep -q '^nightly'; then
        die "fuzzing needs rustup's nightly toolchain (scripts/setup installs it where it can)"
    fi
    targets=$(cd shared && cargo +nightly fuzz list)
    [[ -n $targets ]] || die "shared/fuzz has no fuzz targets"
    # Every target in one cargo build: the crates they share build once, both cores busy.
    step "cargo +nightly fuzz build --sanitizer $sanitizer (all targets)"
    (cd shared && timed cargo +nightly fuzz build --sanitizer "$sanitizer")
    for target in $targets; do
        step "cargo +nightly fuzz run --sanitizer $sanitizer $target (${seconds} s)"
        local corpora=("fuzz/corpus/$target")
        for dir in seeds regressions; do
            if [[ -d shared/fuzz/$dir/$target ]]; then corpora+=("fuzz/$dir/$target"); fi
        done
        mkdir -p "shared/fuzz/corpus/$target"
        (cd shared && timed cargo +nightly fuzz run --sanitizer "$sanitizer" "$target" "${corpora[@]}" -- \
            -max_total_time="$seconds" -print_final_stats=1)
    done
}

# Runs the frontend's wasm-bindgen browser tests (frontend/tests, needs WEBPOP_TEST_ENV) in one
# engine; further arguments go to `cargo test`:
#   chromium  Debian's Chromium through chromedriver (caps: frontend/webdriver.json);
#   firefox   Firefox ESR through geckodriver (scripts/setup builds it), with the e2e suite's
#             locked-down prefs (frontend/e2e/lib/webdriver-json.mjs writes them for the runner);
#   webkit    MiniBrowser through WebKitWebDriver, which the runner drives as it drives
#             safaridriver (it sends no capabilities, so MiniBrowser starts with its defaults),
#             on an Xvfb display of its own.
browser_tests_in() {
    local engine=$1 caps
    shift
    local cargo_test=(scripts/wasm-env cargo test -p webpop-frontend --target wasm32-unknown-unknown "$@")
    case $engine in
        chromium)
            CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} "${cargo_test[@]}"
            ;;
        firefox)
            # Absolute: the runner reads it from the crate's directory.
            caps=$(realpath -m "${CARGO_TARGET_DIR:-target}/webdriver-firefox.json")
            mkdir -p "$(dirname "$caps")"
            node frontend/e2e/lib/webdriver-json.mjs firefox >"$caps"
            env -u CHROMEDRIVER GECKODRIVER="${GECKODRIVER:-$(command -v geckodriver)}" \
                WASM_BINDGEN_TEST_WEBDRIVER_JSON="$caps" "${cargo_test[@]}"
            ;;
        webkit)
            env -u CHROMEDRIVER SAFARIDRIVER="${WEBKIT_WEBDRIVER:-/usr/bin/WebKitWebDriver}" \
                xvfb-run -a -s '-nolisten tcp' "${cargo_test[@]}"
            ;;
        *) die "browser_tests_in: no engine '$engine' (chromium, firefox or webkit)" ;;
    esac
}
