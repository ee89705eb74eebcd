//! `logarithm export`: the detector's wasm faces ship inside the binary and
//! are written out for the hosts that load them — the Fluent Bit filter
//! module (optionally compiled ahead of time with WAMR's `wamrc`, about 3×
//! faster in Fluent Bit) and the component (for jco/Node, wasmtime, or any
//! component host).

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// The Fluent Bit filter module (`wasm32-wasip1` core module), embedded at build time.
pub static FLUENT_BIT_MODULE: &[u8] = include_bytes!(env!("LOGARITHM_FLUENT_BIT_WASM"));

/// Writes `bytes` to `path` (atomically: a half-written module would be
/// loaded by a shipper restarting at the wrong moment), making its
/// directory if need be. The file is readable by all (0644), as an
/// installed program is: a module holds no secret (the model and its key
/// stay in the data directory), and the shipper loading it usually runs
/// as another user.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    make_parent(path)?;
    crate::datadir::write_atomic_with_mode(path, bytes, 0o644).with_context(|| format!("cannot write {}", path.display()))
}

/// Makes the directory `path` goes in, as `install -D` does: the
/// directories made are 0755, whatever the umask (with 077 the shipper's
/// user could not reach the file readable by all).
fn make_parent(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) else { return Ok(()) };
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    for made in missing {
        std::fs::set_permissions(made, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .with_context(|| format!("cannot make directory {} readable by all", made.display()))?;
    }
    Ok(())
}

/// Compiles the wasm module at `wasm` ahead of time into `aot` with WAMR's
/// `wamrc` (which must be the version of the WAMR inside Fluent Bit: 2.4.1
/// for Fluent Bit 5.1), for a portable x86-64 target.
/// Compiled into a new file beside `aot`, renamed over it only when wamrc
/// succeeded: a failed or interrupted compile leaves a good `.aot` there
/// as it was, not half of one for Fluent Bit to load.
pub fn compile_aot(wamrc: &Path, wasm: &Path, aot: &Path) -> Result<()> {
    make_parent(aot)?;
    let dir = aot.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = aot.file_name().map_or_else(|| "module".into(), |n| n.to_string_lossy().into_owned());
    let staged = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let output = Command::new(wamrc)
        .args(["--target=x86_64", "--cpu=x86-64-v2", "-o"])
        .arg(staged.path())
        .arg(wasm)
        .output()
        .with_context(|| format!("cannot run {} (WAMR's AOT compiler; give its path with --wamrc)", wamrc.display()))?;
    if !output.status.success() {
        let said = format!("{} {}", String::from_utf8_lossy(&output.stdout).trim(), String::from_utf8_lossy(&output.stderr).trim());
        let said = if said.trim().is_empty() { "it printed nothing".to_owned() } else { said.trim().to_owned() };
        bail!("{} failed ({}): {said}; {} is left as it was", wamrc.display(), output.status, aot.display());
    }
    // Readable by all, as the module is (wamrc follows the umask).
    std::fs::set_permissions(staged.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .with_context(|| format!("cannot make {} readable by all", aot.display()))?;
    staged.persist(aot).map_err(|e| anyhow::Error::new(e.error)).with_context(|| format!("cannot write {}", aot.display()))?;
    Ok(())
}
