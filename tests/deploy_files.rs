//! The deployment files: the container image definition (linted by hadolint, and its
//! health check run against a real `serve`) and the systemd unit (checked by
//! `systemd-analyze verify`) with its environment file. Missing tools skip loudly, unless
//! SOTA_REQUIRE_TOOLS is set (CI), in which case they fail.

mod support_github;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sota-bot")
}

fn skip(what: &str) {
    assert!(
        std::env::var_os("SOTA_REQUIRE_TOOLS").is_none(),
        "{what} is required because SOTA_REQUIRE_TOOLS is set"
    );
    eprintln!("SKIPPED: {what} is not available; set SOTA_REQUIRE_TOOLS=1 to make this a failure");
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The instructions of the Dockerfile's last stage (continuation lines joined).
fn final_stage() -> Vec<String> {
    let text = read("Dockerfile").replace("\\\n", " ");
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    lines[last_from..].to_vec()
}

fn instruction<'a>(stage: &'a [String], name: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter_map(|l| l.strip_prefix(name).map(str::trim))
        .collect()
}

fn hadolint() -> Option<PathBuf> {
    let local = root().join("tools/python/hadolint/bin/hadolint");
    if local.is_file() {
        return Some(local);
    }
    Command::new("hadolint")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("hadolint"))
}

#[test]
fn the_dockerfile_passes_hadolint_which_catches_a_bad_one() {
    let Some(hadolint) = hadolint() else {
        return skip("hadolint (bash tools/install-python-tools.sh installs it)");
    };
    let out = Command::new(&hadolint)
        .current_dir(root())
        .arg("Dockerfile")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same settings reject an image that runs as root from an untagged base.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "FROM debian\nRUN cd /tmp && apt-get install -y curl\nUSER root\n",
    )
    .unwrap();
    let out = Command::new(&hadolint)
        .arg("--config")
        .arg(root().join(".hadolint.yaml"))
        .arg(&bad)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    for rule in ["DL3006", "DL3003", "DL3002"] {
        assert!(report.contains(rule), "{rule} missing from\n{report}");
    }
}

#[test]
fn the_image_runs_serve_unprivileged_with_its_database_on_a_volume() {
    let stage = final_stage();
    let user = instruction(&stage, "USER ");
    assert_eq!(user.len(), 1, "{stage:?}");
    let uid = user[0].split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "USER {}", user[0]);
    let env = instruction(&stage, "ENV ").join(" ");
    let setting = |name: &str| {
        env.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not set in {env}"))
            .to_string()
    };
    let database = setting("SOTA_BOT_DATABASE");
    let volume = instruction(&stage, "VOLUME ");
    let data_dir = Path::new(&database).parent().unwrap().to_str().unwrap();
    assert!(
        volume
            .iter()
            .any(|v| v.contains(&format!("\"{data_dir}\""))),
        "{volume:?}"
    );
    // The volume directory is owned by the image's user, or serve cannot create the file.
    assert!(
        stage.iter().any(|l| l.starts_with("COPY")
            && l.contains(&format!("--chown={}", user[0]))
            && l.ends_with(data_dir)),
        "{stage:?}"
    );
    let port = setting("SOTA_BOT_LISTEN")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(instruction(&stage, "EXPOSE "), [port.as_str()]);
    let health = instruction(&stage, "HEALTHCHECK ");
    assert!(
        health[0].contains("CMD [\"/usr/local/bin/sota-bot\", \"healthz\"]"),
        "{health:?}"
    );
    assert_eq!(
        instruction(&stage, "ENTRYPOINT "),
        ["[\"/usr/local/bin/sota-bot\"]"]
    );
    assert_eq!(instruction(&stage, "CMD "), ["[\"serve\"]"]);
}

#[test]
fn the_build_context_keeps_every_file_the_binary_embeds() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let embed = regex::Regex::new(r#"include_(?:str|bytes)!\("([^"]+)"\)"#).unwrap();
    let mut checked = 0;
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for m in embed.captures_iter(&text) {
                let target = path.parent().unwrap().join(&m[1]);
                let rel = std::fs::canonicalize(&target)
                    .unwrap_or_else(|e| panic!("{}: {e}", target.display()))
                    .strip_prefix(std::fs::canonicalize(root()).unwrap())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                for pattern in &ignored {
                    let p = pattern.trim_start_matches('/');
                    let hit = rel == p
                        || rel.starts_with(&format!("{p}/"))
                        || p.strip_prefix('*')
                            .is_some_and(|suffix| rel.ends_with(suffix));
                    assert!(
                        !hit,
                        ".dockerignore `{pattern}` drops {rel}, which src embeds"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "{checked} embedded files found");
}

fn healthz(listen: &str) -> (i32, String) {
    let out = Command::new(bin())
        .arg("healthz")
        .env("SOTA_BOT_LISTEN", listen)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Ends `serve` when the test ends, passed or not.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_health_check_command_answers_for_a_running_serve() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app.pem");
    let pem = Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    std::fs::write(&key, pem.stdout).unwrap();
    let port = support_github::free_port();
    // The image listens on the unspecified address; the check asks loopback.
    let listen = format!("0.0.0.0:{port}");
    let (code, out) = healthz(&listen);
    assert_eq!(code, 1, "nothing listens yet: {out}");
    let mut serve = Serve(
        Command::new(bin())
            .args([
                "serve",
                "--app-id",
                "1",
                "--webhook-secrets",
                "s",
                "--no-workers",
            ])
            .arg("--private-key-path")
            .arg(&key)
            .arg("--database")
            .arg(dir.path().join("db.sqlite"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--github-api-url", "http://127.0.0.1:9"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    loop {
        let (code, out) = healthz(&listen);
        if code == 0 {
            assert_eq!(out.trim(), format!("http://127.0.0.1:{port}/healthz: ok"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never became healthy: {out}"
        );
        assert!(serve.0.try_wait().unwrap().is_none(), "serve exited");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _) = healthz("not-an-address");
    assert_eq!(code, 2);
}

fn systemd_analyze() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `systemd-analyze verify` of `unit` with `ExecStart` pointing at the built binary (verify
/// checks that the program exists). Returns (success, everything it printed).
fn verify(unit: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sota-bot.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/sota-bot", bin())).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if !systemd_analyze() {
        return skip("systemd-analyze (Debian package systemd)");
    }
    let unit = read("deploy/systemd/sota-bot.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/sota-bot serve"));
    let (ok, out) = verify(&unit);
    assert!(
        ok && out.trim().is_empty(),
        "systemd-analyze verify:\n{out}"
    );
    // Verify does report a misspelt setting and a missing program.
    let (_, out) = verify(&unit.replace("StateDirectory=", "StateDirectry="));
    assert!(out.contains("Unknown key"), "{out}");
    let (ok, out) = verify(&unit.replace(
        "/usr/local/bin/sota-bot serve",
        "/nonexistent/sota-bot serve",
    ));
    assert!(!ok, "{out}");
}

#[test]
fn the_environment_file_sets_only_settings_serve_reads() {
    let help = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    // Help text wraps lines; compare with whitespace runs folded.
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let unit = read("deploy/systemd/sota-bot.service");
    let env = read("deploy/systemd/sota-bot.env");
    let names: Vec<&str> = env
        .lines()
        .chain(unit.lines().filter_map(|l| l.strip_prefix("Environment=")))
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| k.starts_with("SOTA_BOT_"))
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        assert!(
            help.contains(&format!("[env: {name}")),
            "`serve` has no setting {name}"
        );
    }
    // Both required settings without a unit-provided value are in the file.
    for required in ["SOTA_BOT_APP_ID=", "SOTA_BOT_WEBHOOK_SECRETS="] {
        assert!(env.lines().any(|l| l.starts_with(required)), "{required}");
    }
}
