//! The systemd units of `examples/systemd/`: `systemd-analyze verify` accepts
//! them (pointed at the built binaries), they carry the hardening the issue
//! asks for and no key on a command line, `systemd-analyze security` rates
//! them safe, and their command lines work the way systemd runs them (state
//! directory, key from `$CREDENTIALS_DIRECTORY`).
//!
//! Needs `systemd-analyze` (Debian package `systemd`); systemd need not be
//! running.

use super::*;

const UNITS: [&str; 3] = ["logarithm.service", "logarithm-train.service", "logarithm-train.timer"];
const MONITOR: &str = "logarithm.service";
const TRAINER: &str = "logarithm-train.service";
const TIMER: &str = "logarithm-train.timer";

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("examples/systemd")
}

fn unit_text(name: &str) -> String {
    let path = units_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A unit file's settings in order: (section, key, value), comments and
/// blank lines left out.
fn settings(name: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (no, line) in unit_text(name).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "{name}:{}: continuation lines are not expected", no + 1);
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{name}:{}: not a setting: {line}", no + 1));
        out.push((section.clone(), key.trim().to_owned(), value.trim().to_owned()));
    }
    out
}

/// All values of `key` in `section`, in order.
fn values(all: &[(String, String, String)], section: &str, key: &str) -> Vec<String> {
    all.iter().filter(|(s, k, _)| s == section && k == key).map(|(_, _, v)| v.clone()).collect()
}

/// The single value of `key` in `section`.
fn value(name: &str, all: &[(String, String, String)], section: &str, key: &str) -> Option<String> {
    let v = values(all, section, key);
    assert!(v.len() <= 1, "{name}: [{section}] {key}= is set {} times: {v:?}", v.len());
    v.into_iter().next()
}

fn systemd_analyze() -> Command {
    let mut cmd = Command::new("systemd-analyze");
    cmd.env("SYSTEMD_LOG_COLOR", "0").env("SYSTEMD_PAGER", "").env("LC_ALL", "C");
    cmd
}

fn analyze(args: &[&str]) -> std::process::Output {
    systemd_analyze()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-analyze ({e}): it is in the Debian package systemd (apt-get install systemd)"))
}

/// systemd's version number (`systemd 252 (252.39-1~deb12u2)` → 252).
fn systemd_version() -> u32 {
    let out = analyze(&["--version"]);
    let text = ok(&out);
    let first = text.lines().next().unwrap_or_default();
    first.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("unexpected version line: {first:?}"))
}

/// Copies of the units in a temporary directory, with `/usr/local/bin/...`
/// replaced by the built binaries: `verify` checks that they exist.
fn units_for_verify() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in UNITS {
        let mut text = unit_text(name);
        for binary in ["logarithm-trainer", "logarithm"] {
            // `logarithm-trainer` first: `/usr/local/bin/logarithm` is its prefix.
            let from = format!("/usr/local/bin/{binary} ");
            let to = format!("{} ", bin(binary).display());
            text = text.replace(&from, &to);
        }
        assert!(!text.contains("/usr/local/bin/"), "{name}: an ExecStart= binary was not rewritten:\n{text}");
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The Exec*= command lines of a unit, split into words.
fn exec_lines(name: &str) -> Vec<(String, Vec<String>)> {
    settings(name)
        .into_iter()
        .filter(|(s, k, _)| s == "Service" && k.starts_with("Exec"))
        .map(|(_, k, v)| (k, v.split_whitespace().map(str::to_owned).collect()))
        .collect()
}

/// ExecStart= of a service, as systemd would run it with the state
/// directory root `state` (`%S`): (binary name, arguments).
fn exec_start(name: &str, state: &Path) -> (String, Vec<String>) {
    let lines: Vec<_> = exec_lines(name).into_iter().filter(|(k, _)| k == "ExecStart").collect();
    assert_eq!(lines.len(), 1, "{name}: expected one ExecStart=, got {lines:?}");
    let words = &lines[0].1;
    let binary = Path::new(&words[0]).file_name().unwrap().to_str().unwrap().to_owned();
    let args: Vec<String> = words[1..].iter().map(|w| w.replace("%S", state.to_str().unwrap())).collect();
    for a in &args {
        assert!(
            !a.contains('%') && !a.contains('$'),
            "{name}: ExecStart= word {a:?} needs a specifier or variable the test does not expand"
        );
    }
    (binary, args)
}

/// Issue: "checked with `systemd-analyze verify`". No error, and no
/// warning about our units (the host's own units may have some).
#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = units_for_verify();
    let paths: Vec<String> = UNITS.iter().map(|u| dir.path().join(u).to_str().unwrap().to_owned()).collect();
    let mut args = vec!["verify", "--man=no"];
    args.extend(paths.iter().map(String::as_str));
    let out = analyze(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed ({}):\n{stderr}", out.status);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains(dir.path().to_str().unwrap()) || l.contains("logarithm")).collect();
    assert!(ours.is_empty(), "systemd-analyze verify warns about our units:\n{}", ours.join("\n"));

    // The check is real: a misspelt setting in our unit is reported.
    let bad = dir.path().join("bad").join(MONITOR);
    fs::create_dir(bad.parent().unwrap()).unwrap();
    fs::write(&bad, fs::read_to_string(dir.path().join(MONITOR)).unwrap().replace("NoNewPrivileges=", "NoNewPrivilege=")).unwrap();
    let out = analyze(&["verify", "--man=no", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unknown key") && stderr.contains("NoNewPrivilege"), "a misspelt key went unnoticed:\n{stderr}");
}

/// The hardening the issue lists, in both services, and the settings they
/// must agree on to share one state directory, one key and the same logs.
#[test]
fn services_are_hardened_and_share_identity_state_and_key() {
    let must = |name: &str, all: &[(String, String, String)], key: &str, expected: &str| {
        assert_eq!(value(name, all, "Service", key).as_deref(), Some(expected), "{name}: [Service] {key}=");
    };
    for name in [MONITOR, TRAINER] {
        let all = settings(name);
        for (key, expected) in [
            ("DynamicUser", "yes"),
            ("User", "logarithm"),
            ("Group", "logarithm"),
            ("StateDirectory", "logarithm"),
            ("StateDirectoryMode", "0700"),
            ("UMask", "0077"),
            ("LoadCredential", "logarithm-key:/etc/logarithm/key"),
            ("LogNamespace", "logarithm"),
            ("NoNewPrivileges", "yes"),
            ("CapabilityBoundingSet", ""),
            ("AmbientCapabilities", ""),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("PrivateNetwork", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectKernelLogs", "yes"),
            ("ProtectControlGroups", "yes"),
            ("RestrictAddressFamilies", "AF_UNIX"),
            ("RestrictNamespaces", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("LockPersonality", "yes"),
            ("SystemCallArchitectures", "native"),
        ] {
            must(name, &all, key, expected);
        }
        let groups: Vec<String> = values(&all, "Service", "SupplementaryGroups")
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        for group in ["systemd-journal", "adm"] {
            assert!(groups.iter().any(|g| g == group), "{name}: SupplementaryGroups= lacks {group}: {groups:?}");
        }
        let filters = values(&all, "Service", "SystemCallFilter");
        assert_eq!(
            filters.first().map(String::as_str),
            Some("@system-service"),
            "{name}: SystemCallFilter= must start from @system-service: {filters:?}"
        );
        // Nothing widens the sandbox again.
        for key in ["ReadWritePaths", "BindPaths", "PermissionsStartOnly"] {
            assert!(values(&all, "Service", key).is_empty(), "{name}: unexpected {key}=");
        }

        // The key: never on a command line, never in the environment.
        for (key, words) in exec_lines(name) {
            for w in &words {
                assert!(
                    !(w.starts_with("-K") || w.starts_with("--encryption-key") || w.contains("LOGARITHM_ENCRYPTION_KEY")),
                    "{name}: {key}= passes the key on the command line: {words:?}"
                );
            }
        }
        for key in ["Environment", "EnvironmentFile", "PassEnvironment"] {
            for v in values(&all, "Service", key) {
                assert!(!v.contains("LOGARITHM_ENCRYPTION_KEY"), "{name}: {key}={v} passes the key in the environment");
            }
        }
        // Both use the state directory as their data directory.
        let (_, args) = exec_start(name, Path::new("/STATE"));
        let d =
            args.iter().position(|a| a == "-D" || a == "--data-dir").unwrap_or_else(|| panic!("{name}: ExecStart= has no -D: {args:?}"));
        assert_eq!(args.get(d + 1).map(String::as_str), Some("/STATE/logarithm"), "{name}: -D is not the state directory");
    }

    let monitor = settings(MONITOR);
    must(MONITOR, &monitor, "Type", "notify");
    must(MONITOR, &monitor, "WatchdogSec", "60s");
    must(MONITOR, &monitor, "Restart", "on-failure");
    must(MONITOR, &monitor, "RestartSec", "5s");
    // wasmtime's JIT needs executable memory it wrote: the monitor must not
    // get MemoryDenyWriteExecute= (the comment in the unit says why).
    assert!(
        value(MONITOR, &monitor, "Service", "MemoryDenyWriteExecute").is_none_or(|v| v == "no"),
        "{MONITOR}: MemoryDenyWriteExecute= breaks wasmtime"
    );
    assert!(unit_text(MONITOR).contains("wasmtime"), "{MONITOR}: the comment explaining the missing MemoryDenyWriteExecute= is gone");
    assert_eq!(values(&monitor, "Install", "WantedBy"), ["multi-user.target"]);
    let (binary, args) = exec_start(MONITOR, Path::new("/STATE"));
    assert_eq!((binary.as_str(), args.first().map(String::as_str)), ("logarithm", Some("monitor")));

    let trainer = settings(TRAINER);
    must(TRAINER, &trainer, "Type", "oneshot");
    must(TRAINER, &trainer, "MemoryDenyWriteExecute", "yes");
    assert!(values(&trainer, "Install", "WantedBy").is_empty(), "{TRAINER}: started by its timer, not enabled by itself");
    let (binary, args) = exec_start(TRAINER, Path::new("/STATE"));
    assert_eq!((binary.as_str(), args.first().map(String::as_str)), ("logarithm-trainer", Some("train")));

    let timer = settings(TIMER);
    assert!(value(TIMER, &timer, "Timer", "OnCalendar").is_some(), "{TIMER}: no OnCalendar=");
    assert_eq!(value(TIMER, &timer, "Timer", "Persistent").as_deref(), Some("true"));
    // The timer starts the service of its own name.
    assert!(value(TIMER, &timer, "Timer", "Unit").is_none_or(|u| u == TRAINER));
    assert_eq!(values(&timer, "Install", "WantedBy"), ["timers.target"]);
}

/// `systemd-analyze security --offline` (systemd 250 and later) rates both
/// services well inside "SAFE" (they score 0.4 on systemd 252).
#[test]
fn services_have_a_low_exposure_score() {
    let version = systemd_version();
    if version < 250 {
        eprintln!("systemd {version} has no `systemd-analyze security --offline`: exposure not checked");
        return;
    }
    let dir = units_for_verify();
    for name in [MONITOR, TRAINER] {
        let path = dir.path().join(name);
        let out = analyze(&["security", "--offline=yes", "--no-pager", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let marker = format!("Overall exposure level for {name}: ");
        let score: f64 = stdout
            .lines()
            .find_map(|l| l.split_once(marker.as_str()).map(|(_, rest)| rest))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level for {name}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        let weak: Vec<&str> = stdout.lines().filter(|l| l.starts_with('✗')).collect();
        assert!(score <= 1.0, "{name}: exposure {score} > 1.0; weak settings:\n{}", weak.join("\n"));
    }
}

/// The ExecStart= lines run the way systemd runs them: the trainer creates a
/// model in the state directory with the key from `$CREDENTIALS_DIRECTORY`
/// (and generates no key of its own), and the monitor loads it with that key.
#[test]
fn exec_lines_train_and_monitor_with_the_credential_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let data = state.join("logarithm");
    let creds = dir.path().join("credentials");
    fs::create_dir_all(&creds).unwrap();
    // What StateDirectory=logarithm and StateDirectoryMode=0700 make.
    fs::create_dir_all(&data).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let passphrase = "credential passphrase from /etc/logarithm/key";
    fs::write(creds.join("logarithm-key"), passphrase).unwrap();
    let history = dir.path().join("history.log");
    fakelogs(&history, 3000, 0, 21, "syslog");
    let new = dir.path().join("new.log");
    fakelogs(&new, 200, 0, 22, "syslog");

    let run_unit = |unit: &str, extra: &[&str]| {
        let (binary, mut args) = exec_start(unit, &state);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        command(&binary).args(&args).env("CREDENTIALS_DIRECTORY", &creds).stdin(Stdio::null()).output().unwrap()
    };

    ok(&run_unit(TRAINER, &[history.to_str().unwrap()]));
    assert!(!data.join("key").exists(), "the trainer generated a key of its own instead of using the credential logarithm-key");
    let out = run_unit(MONITOR, &["--once", "--all", "-f", "json", new.to_str().unwrap()]);
    assert_eq!(json_lines(&ok(&out)).len(), 200, "the monitor did not score every line");
    // The model is sealed with the credential's passphrase.
    assert_eq!(json_lines(&ok(&scan(&data, passphrase, &[new.to_str().unwrap()]))).len(), 200);
}
