//! The `ahlt-operator` binary's offline subcommands.

use std::process::Command;

fn operator(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ahlt-operator"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run ahlt-operator")
}

#[test]
fn crd_prints_exactly_the_committed_crd() {
    let out = operator(&["crd"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/ahltenvironment.yaml"
    ))
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

#[test]
fn render_prints_every_child_of_the_dev_example_with_secrets_redacted() {
    let out = operator(&["render", "-f", "examples/dev.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    for kind in [
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "Ingress",
        "Job",
    ] {
        assert!(yaml.contains(&format!("kind: {kind}\n")), "{kind} missing");
    }
    for key in ["DATABASE_URL", "SESSION_KEY", "ADMIN_PASSWORD"] {
        let line = yaml
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(line.contains("redacted"), "{key} not redacted: {line}");
    }
}

#[test]
fn render_fails_clearly_on_an_invalid_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/dev.yaml"))
            .unwrap();
    std::fs::write(&bad, example.replace("environment: dev", "environment: qa")).unwrap();
    let out = operator(&["render", "-f", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("qa"),
        "{stderr}"
    );
    let missing = operator(&["render", "-f", "does-not-exist.yaml"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}
