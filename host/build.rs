//! Builds the detection crate (`guest/`, release) for its two wasm faces so
//! that plain `cargo build` / `cargo test` always embed fresh ones:
//! - `wasm32-wasip2`: the detector component the host runs under wasmtime
//!   (`LOGARITHM_GUEST_WASM`), built with SIMD128;
//! - `wasm32-wasip1`: the core module for Fluent Bit's `filter_wasm`, which
//!   `logarithm export fluent-bit` writes out (`LOGARITHM_FLUENT_BIT_WASM`).
//!
//! The nested cargo uses its own target dir (`target/guest`; sharing the outer
//! one would deadlock on its lock), is spawned with `$CARGO`, and drops
//! `CARGO_ENCODED_RUSTFLAGS` (host flags must not leak into a wasm build).
//! Set either variable to a prebuilt `.wasm` to embed it instead. Under
//! `cargo clippy` the nested build inherits clippy's wrapper, so the wasm
//! faces (`component.rs`, `fluentbit.rs`, compiled for wasm only) are linted
//! too, and `-D warnings` applies to them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for (target, var) in [("wasm32-wasip2", "LOGARITHM_GUEST_WASM"), ("wasm32-wasip1", "LOGARITHM_FLUENT_BIT_WASM")] {
        let wasm = prebuilt(var).unwrap_or_else(|| build(root, target));
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
}

/// The prebuilt module named by `var`, if it is set.
fn prebuilt(var: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    let path = PathBuf::from(env::var_os(var)?);
    if !path.is_file() {
        panic!("{var}={} is not a file", path.display());
    }
    println!("cargo:rerun-if-changed={}", path.display());
    Some(path)
}

/// Builds `guest/` for `target` and returns the `.wasm`.
fn build(root: &Path, target: &str) -> PathBuf {
    let target_dir = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("guest");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root.join("guest"))
        .args(["build", "--release", "--lib", "--target", target, "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    if target == "wasm32-wasip1" {
        // The Fluent Bit module exports its allocator: WAMR then copies each
        // record into the module's own memory, which grows as needed,
        // instead of into its fixed app heap (`Wasm_Heap_Size`, 8 KiB by
        // default), where a record that does not fit reaches the module as
        // a null pointer and is lost.
        command.env("CARGO_ENCODED_RUSTFLAGS", "-Clink-arg=--export=malloc\u{1f}-Clink-arg=--export=free");
    } else {
        // The component may use SIMD128 (wasmtime, Node and browsers run
        // it), which LLVM uses for loops such as the network's side-by-side
        // sums (issue 11: new lines ~18% faster end to end). The same bits:
        // without fast-math it vectorizes independent lanes only, never
        // reorders a sum (the golden test checks). Not for the Fluent Bit
        // module: not every WAMR interpreter runs SIMD.
        command.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+simd128");
    }
    let output = command
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("could not run cargo to build the detector's wasm faces");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains(target)
            && (stderr.contains("target may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`"))
        {
            panic!("the {target} target is missing; install it with: rustup target add {target}\n{stderr}");
        }
        panic!("building the detector (guest/) for {target} failed:\n{stderr}");
    }
    let wasm = target_dir.join(target).join("release/logarithm_detector.wasm");
    assert!(wasm.is_file(), "the guest build did not produce {}", wasm.display());
    wasm
}
