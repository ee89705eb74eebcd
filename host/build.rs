//! Builds the detector component (`guest/`, release, `wasm32-wasip2`) so that
//! plain `cargo build` / `cargo test` always embed a fresh one.
//!
//! The nested cargo uses its own target dir (`target/guest`; sharing the outer
//! one would deadlock on its lock), is spawned with `$CARGO`, and drops
//! `CARGO_ENCODED_RUSTFLAGS` (host flags must not leak into a wasm build).
//! Set `LOGARITHM_GUEST_WASM=/path/to/component.wasm` to embed a prebuilt
//! component instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LOGARITHM_GUEST_WASM");
    if let Some(prebuilt) = env::var_os("LOGARITHM_GUEST_WASM") {
        let prebuilt = PathBuf::from(prebuilt);
        if !prebuilt.is_file() {
            panic!("LOGARITHM_GUEST_WASM={} is not a file", prebuilt.display());
        }
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        println!("cargo:rustc-env=LOGARITHM_GUEST_WASM={}", prebuilt.display());
        return;
    }

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let guest = root.join("guest");
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("guest");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&guest)
        .args(["build", "--release", "--lib", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("could not run cargo to build the detector component");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("wasm32-wasip2")
            && (stderr.contains("target may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`"))
        {
            panic!("the wasm32-wasip2 target is missing; install it with: rustup target add wasm32-wasip2\n{stderr}");
        }
        panic!("building the detector component (guest/) failed:\n{stderr}");
    }
    let wasm = target_dir.join("wasm32-wasip2/release/logarithm_detector.wasm");
    assert!(Path::new(&wasm).is_file(), "the guest build did not produce {}", wasm.display());
    println!("cargo:rustc-env=LOGARITHM_GUEST_WASM={}", wasm.display());
}
