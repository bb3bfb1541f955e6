//! The three places that must agree on what runs where: the Dockerfile (what the images
//! contain), the Helm chart (how the operator image is run) and the operator's builders
//! (how the app image is run by the Deployment and the Jobs). A rename in one of them
//! without the others fails here, not in a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One stage of the Dockerfile: its base and instructions (continuations joined).
#[derive(Debug, Default, Clone)]
struct Stage {
    base: String,
    instructions: Vec<(String, String)>,
}

fn dockerfile_stages(text: &str) -> BTreeMap<String, Stage> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(line);
            joined.push(std::mem::take(&mut current));
        }
    }
    let mut stages = BTreeMap::new();
    let mut name = None::<String>;
    for instruction in joined.iter().filter(|l| !l.is_empty()) {
        let (op, args) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction, ""));
        let op = op.to_ascii_uppercase();
        let args = args.trim().to_owned();
        if op == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let stage_name = match words.as_slice() {
                [base, as_, n] if as_.eq_ignore_ascii_case("as") => {
                    stages.insert(
                        n.to_string(),
                        Stage {
                            base: base.to_string(),
                            instructions: vec![],
                        },
                    );
                    n.to_string()
                }
                _ => panic!("every stage needs a name: FROM {args}"),
            };
            name = Some(stage_name);
        } else if let Some(n) = &name {
            stages.get_mut(n).unwrap().instructions.push((op, args));
        }
    }
    stages
}

/// An instruction's value in `stage`, following `FROM <earlier stage>` for inherited ones
/// (USER, ENTRYPOINT, CMD, EXPOSE, ENV).
fn inherited(stages: &BTreeMap<String, Stage>, stage: &str, op: &str) -> Vec<String> {
    let s = &stages[stage];
    let own: Vec<String> = s
        .instructions
        .iter()
        .filter(|(o, _)| o == op)
        .map(|(_, a)| a.clone())
        .collect();
    if !own.is_empty() || !stages.contains_key(&s.base) {
        return own;
    }
    inherited(stages, &s.base, op)
}

fn json_array(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("exec form expected, got {s}: {e}"))
}

/// `[[bin]] name` of a crate's Cargo.toml.
fn bin_name(manifest: &str) -> String {
    let text = read(manifest);
    let bin = text.split("[[bin]]").nth(1).expect("a [[bin]] section");
    let line = bin
        .lines()
        .find(|l| l.trim_start().starts_with("name"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

/// The leading words of `args` that are subcommands of `cmd`; panics unless at least one is
/// and the last one needs no further subcommand.
fn assert_subcommands(cmd: &clap::Command, args: &[String], what: &str) {
    let mut cmd = cmd.clone();
    let mut matched = 0;
    for arg in args.iter().take_while(|a| !a.starts_with('-')) {
        match cmd.find_subcommand(arg) {
            Some(sub) => {
                cmd = sub.clone();
                matched += 1;
            }
            None => panic!(
                "{what}: `{arg}` is not a subcommand of `{}`",
                cmd.get_name()
            ),
        }
    }
    assert!(matched > 0, "{what}: no subcommand in {args:?}");
    assert!(
        !cmd.is_subcommand_required_set() || cmd.get_subcommands().next().is_none(),
        "{what}: `{}` needs a further subcommand",
        cmd.get_name()
    );
}

fn uid_of(user: &str) -> i64 {
    user.split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("USER must be numeric (runAsNonRoot), got {user}"))
}

const DOCKERFILE: &str = "Dockerfile";
const CHART_DEPLOYMENT: &str = "helm/ahlt-operator/templates/deployment.yaml";
const CHART_VALUES: &str = "helm/ahlt-operator/values.yaml";
const EXAMPLES: [&str; 3] = [
    "examples/dev.yaml",
    "examples/staging.yaml",
    "examples/prod.yaml",
];

/// Containers of every Deployment and Job the operator renders for the examples.
fn operator_containers() -> Vec<(String, serde_yaml::Value, serde_yaml::Value)> {
    let mut out = Vec::new();
    for example in EXAMPLES {
        let rendered = ahlt_operator::render::render_manifest(&read(example))
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        for doc in rendered.split("\n---\n") {
            let doc: serde_yaml::Value = match serde_yaml::from_str(doc) {
                Ok(serde_yaml::Value::Mapping(m)) => serde_yaml::Value::Mapping(m),
                _ => continue,
            };
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let pod = match kind.as_str() {
                "Deployment" | "Job" => doc["spec"]["template"]["spec"].clone(),
                _ => continue,
            };
            for c in pod["containers"].as_sequence().unwrap() {
                out.push((format!("{example}: {kind}"), c.clone(), pod.clone()));
            }
        }
    }
    assert!(
        out.len() >= 6,
        "expected Deployments and Jobs, got {}",
        out.len()
    );
    out
}

#[test]
fn the_dockerfile_builds_the_binaries_the_images_run() {
    let stages = dockerfile_stages(&read(DOCKERFILE));
    let app_bin = bin_name("app/Cargo.toml");
    let operator_bin = bin_name("operator/Cargo.toml");
    let build = stages
        .values()
        .flat_map(|s| &s.instructions)
        .find(|(op, a)| op == "RUN" && a.contains("cargo build"))
        .expect("a cargo build step")
        .1
        .clone();
    for (target, bin) in [("app", &app_bin), ("operator", &operator_bin)] {
        assert!(stages.contains_key(target), "no `{target}` target");
        assert!(build.contains("--release"), "release builds: {build}");
        assert!(
            build.contains(&format!("--bin {bin}")),
            "{bin} not built: {build}"
        );
        let entrypoint = json_array(inherited(&stages, target, "ENTRYPOINT").last().unwrap());
        assert_eq!(
            Path::new(&entrypoint[0]).file_name().unwrap(),
            bin.as_str(),
            "{target} image runs {entrypoint:?}"
        );
        let copies_it = stages[target].instructions.iter().any(|(op, a)| {
            op == "COPY"
                && a.starts_with("--from=")
                && a.contains(&format!("/{bin} "))
                && a.ends_with(&entrypoint[0])
        });
        assert!(
            copies_it,
            "{target} does not copy {bin} to {}",
            entrypoint[0]
        );
    }
    // The default commands are real subcommands.
    let app_cmd = json_array(inherited(&stages, "app", "CMD").last().unwrap());
    assert_subcommands(&ahlt::cli::Cli::command(), &app_cmd, "app CMD");
    let op_cmd = json_array(inherited(&stages, "operator", "CMD").last().unwrap());
    assert_subcommands(&ahlt_operator::cli::Cli::command(), &op_cmd, "operator CMD");
}

#[test]
fn the_operator_runs_the_app_image_as_the_dockerfile_built_it() {
    let stages = dockerfile_stages(&read(DOCKERFILE));
    let app = ahlt::cli::Cli::command();
    let uid = uid_of(inherited(&stages, "app", "USER").last().expect("a USER"));
    let exposed: BTreeSet<i32> = inherited(&stages, "app", "EXPOSE")
        .iter()
        .flat_map(|e| {
            e.split_whitespace()
                .map(|p| p.split('/').next().unwrap().parse().unwrap())
        })
        .collect();
    let mut seen_args = BTreeSet::new();
    for (what, container, pod) in operator_containers() {
        // No command: the image's ENTRYPOINT (the binary) runs the args.
        assert!(container.get("command").is_none(), "{what}: sets a command");
        let args: Vec<String> = serde_yaml::from_value(container["args"].clone()).unwrap();
        assert_subcommands(&app, &args, &what);
        seen_args.insert(args.join(" "));
        assert_eq!(
            pod["securityContext"]["runAsUser"].as_i64(),
            Some(uid),
            "{what}: runAsUser"
        );
        for port in container["ports"].as_sequence().into_iter().flatten() {
            let port = port["containerPort"].as_i64().unwrap() as i32;
            assert!(
                exposed.contains(&port),
                "{what}: port {port} not EXPOSEd ({exposed:?})"
            );
            assert_eq!(port, ahlt_operator::names::HTTP_PORT);
        }
    }
    for expected in ["serve", "migrate", "graph resync"] {
        assert!(
            seen_args.contains(expected),
            "no container runs `{expected}`: {seen_args:?}"
        );
    }
    // The app's own default port is the one the Deployment and Service use.
    let port_default = app
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .unwrap()
        .get_arguments()
        .find(|a| a.get_env().is_some_and(|e| e == "PORT"))
        .and_then(|a| a.get_default_values().first().cloned())
        .map(|v| v.to_string_lossy().into_owned());
    if let Some(default) = port_default {
        assert_eq!(
            default,
            ahlt_operator::names::HTTP_PORT.to_string(),
            "app PORT default"
        );
    }
}

/// `key: value` of a top-level scalar in values.yaml.
fn top_level_value(values: &serde_yaml::Value, key: &str) -> serde_yaml::Value {
    values[key].clone()
}

#[test]
fn the_chart_runs_the_operator_image_as_the_dockerfile_built_it() {
    let stages = dockerfile_stages(&read(DOCKERFILE));
    let template = read(CHART_DEPLOYMENT);
    let values: serde_yaml::Value = serde_yaml::from_str(&read(CHART_VALUES)).unwrap();
    let operator = ahlt_operator::cli::Cli::command();

    // args: the subcommand the chart runs exists.
    let args_line = template
        .lines()
        .find(|l| l.trim_start().starts_with("args:"))
        .expect("the chart sets args");
    let args = json_array(args_line.trim_start().trim_start_matches("args:").trim());
    assert_subcommands(&operator, &args, "chart args");
    assert!(
        !template.contains("command:"),
        "the chart must not override the entrypoint"
    );

    // Every environment variable the chart sets is one `run` reads.
    let run = operator.find_subcommand(&args[0]).unwrap();
    let read_by_run: BTreeSet<String> = run
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .chain(["RUST_LOG".to_owned()])
        .collect();
    let env_block = template
        .split("env:")
        .nth(1)
        .unwrap()
        .split("ports:")
        .next()
        .unwrap();
    let set_by_chart: Vec<&str> = env_block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: "))
        .collect();
    assert!(set_by_chart.len() >= 5, "{set_by_chart:?}");
    for var in &set_by_chart {
        assert!(
            read_by_run.contains(*var),
            "the chart sets {var}, `run` does not read it"
        );
    }

    // The port: values.port is the container port, HTTP_ADDR's port and EXPOSEd.
    let port = top_level_value(&values, "port").as_i64().unwrap();
    assert!(template.contains("containerPort: {{ .Values.port }}"));
    assert!(template.contains("value: \"0.0.0.0:{{ .Values.port }}\""));
    let exposed = inherited(&stages, "operator", "EXPOSE");
    assert!(
        exposed
            .iter()
            .any(|e| e.split_whitespace().any(|p| p == port.to_string())),
        "{exposed:?}"
    );
    let http_default = run
        .get_arguments()
        .find(|a| a.get_env().is_some_and(|e| e == "HTTP_ADDR"))
        .and_then(|a| a.get_default_values().first().cloned())
        .unwrap();
    assert!(
        http_default
            .to_string_lossy()
            .ends_with(&format!(":{port}")),
        "{http_default:?}"
    );

    // Probes hit the paths the operator serves.
    for path in ["/healthz", "/readyz"] {
        assert!(
            template.contains(&format!("path: {path}")),
            "no probe on {path}"
        );
    }

    // The runtime user.
    let uid = uid_of(
        inherited(&stages, "operator", "USER")
            .last()
            .expect("a USER"),
    );
    assert!(
        template.contains(&format!("runAsUser: {uid}")),
        "chart runAsUser != Dockerfile USER {uid}"
    );
}

#[test]
fn image_names_agree_across_chart_examples_and_pipeline() {
    let values: serde_yaml::Value = serde_yaml::from_str(&read(CHART_VALUES)).unwrap();
    let operator_repo = values["image"]["repository"].as_str().unwrap().to_owned();
    for example in EXAMPLES {
        let env: serde_yaml::Value = serde_yaml::from_str(&read(example)).unwrap();
        let app_repo = env["spec"]["image"]["repository"].as_str().unwrap();
        assert_eq!(format!("{app_repo}/operator"), operator_repo, "{example}");
    }
    let ci: serde_yaml::Value = serde_yaml::from_str(&read(".gitlab-ci.yml")).unwrap();
    assert_eq!(
        ci["variables"]["APP_IMAGE"].as_str(),
        Some("$CI_REGISTRY_IMAGE")
    );
    assert_eq!(
        ci["variables"]["OPERATOR_IMAGE"].as_str(),
        Some("$CI_REGISTRY_IMAGE/operator")
    );
    let build = ci["build"]["script"].as_sequence().unwrap();
    let script: String = build
        .iter()
        .filter_map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "--target \"$TARGET\"",
        "$IMAGE:$CI_COMMIT_SHA",
        "IMAGE=$APP_IMAGE",
        "IMAGE=$OPERATOR_IMAGE",
    ] {
        assert!(script.contains(needle), "build job lacks {needle}");
    }
    let targets = &ci["build"]["parallel"]["matrix"][0]["TARGET"];
    let stages = dockerfile_stages(&read(DOCKERFILE));
    for t in targets.as_sequence().unwrap() {
        assert!(
            stages.contains_key(t.as_str().unwrap()),
            "no Dockerfile target {t:?}"
        );
    }
}

#[test]
fn the_checks_catch_a_mismatch() {
    // The parser and the subcommand check are what the tests above stand on: prove that a
    // wrong Dockerfile or a wrong subcommand is noticed.
    let wrong = "FROM x AS runtime\nUSER 10001\nFROM runtime AS app\nENTRYPOINT [\"/usr/local/bin/ahlt-server\"]\nCMD [\"server\"]\n";
    let stages = dockerfile_stages(wrong);
    let entry = json_array(inherited(&stages, "app", "ENTRYPOINT").last().unwrap());
    assert_ne!(
        Path::new(&entry[0]).file_name().unwrap(),
        bin_name("app/Cargo.toml").as_str()
    );
    assert_eq!(
        uid_of(inherited(&stages, "app", "USER").last().unwrap()),
        10001
    );
    let cmd = json_array(inherited(&stages, "app", "CMD").last().unwrap());
    let result = std::panic::catch_unwind(|| {
        assert_subcommands(&ahlt::cli::Cli::command(), &cmd, "wrong CMD")
    });
    assert!(result.is_err(), "`server` accepted as a subcommand");
    let result = std::panic::catch_unwind(|| {
        assert_subcommands(
            &ahlt::cli::Cli::command(),
            &["graph".to_owned()],
            "bare graph",
        )
    });
    assert!(result.is_err(), "`graph` without `resync` accepted");
}
