//! The deployment files under `deploy/` agree with each other and with the exporter: the
//! Kubernetes objects point at each other by the right names and ports, the ConfigMap holds a
//! config the exporter accepts with keys where the Secret is mounted, the PrometheusRule is
//! rendered from the mixin with `dashboards/alerts.yaml`, the image runs as non-root, and the systemd unit
//! hands over the credentials the way its comment tells the config to read them.
//! Schema validation (kubernetes-validate, the prometheus-operator CRD schemas, hadolint,
//! systemd-analyze) is `scripts/validate.sh`, which CI runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{alert_rules, repo_path, yaml};
use cdss_precheck_exporter::config::Config;
use cdss_precheck_exporter::credentials::{CredentialSource, KeySource};
use cdss_precheck_exporter::model::DEFAULT_ACCOUNT;
use serde_json::Value;

fn text(rel: &str) -> String {
    std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// deploy/kubernetes/prometheusrule.yaml carries the rules of alerts.yaml as its spec (both are
/// rendered from the mixin; `dashboards::committed_files_are_what_the_mixin_renders` checks that).
#[test]
fn prometheusrule_holds_the_rules_of_alerts_yaml() {
    let rule = yaml("deploy/kubernetes/prometheusrule.yaml");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["spec"], yaml("dashboards/alerts.yaml"));
}

#[test]
fn kustomization_lists_every_manifest() {
    let k = yaml("deploy/kubernetes/kustomization.yaml");
    let mut listed: Vec<String> = k["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("resource").to_string())
        .collect();
    listed.sort();
    let mut files: Vec<String> = std::fs::read_dir(repo_path("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    assert_eq!(listed, files);
}

#[test]
fn kubernetes_objects_point_at_each_other() {
    let deployment = yaml("deploy/kubernetes/deployment.yaml");
    let service = yaml("deploy/kubernetes/service.yaml");
    let monitor = yaml("deploy/kubernetes/servicemonitor.yaml");
    let configmap = yaml("deploy/kubernetes/configmap.yaml");

    let pod = &deployment["spec"]["template"];
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    for (k, v) in selector.as_object().expect("selector") {
        assert_eq!(&pod["metadata"]["labels"][k], v, "deployment selector {k}");
        assert_eq!(&service["spec"]["selector"][k], v, "service selector {k}");
    }
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("servicemonitor selector")
    {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "servicemonitor selects the service by {k}"
        );
    }

    let container = &pod["spec"]["containers"][0];
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], 9787, "the exporter's default port");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], port["name"], "{probe}");
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/-/healthy");

    // Prometheus names the job after the Service; the alert rules expect that job.
    let job = service["metadata"]["name"].as_str().expect("service name");
    let down = alert_rules()
        .into_iter()
        .find(|r| r["alert"] == "CdssExporterDown")
        .expect("CdssExporterDown");
    assert!(
        down["expr"]
            .as_str()
            .unwrap()
            .contains(&format!("up{{job=\"{job}\"}}")),
        "CdssExporterDown watches job {job:?}"
    );

    // Non-root, read-only, no privilege escalation.
    let pod_security = &pod["spec"]["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"], true);
    assert!(pod_security["runAsUser"].as_u64().is_some_and(|u| u != 0));
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    // The config in the ConfigMap is mounted where --config.file points, the exporter accepts
    // it, and its key files are in the mounted Secret.
    let mount = |volume: &str| -> PathBuf {
        let m = container["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["name"] == volume)
            .unwrap_or_else(|| panic!("no mount of volume {volume}"));
        PathBuf::from(m["mountPath"].as_str().expect("mountPath"))
    };
    let volume = |name: &str| -> Value {
        pod["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    assert_eq!(
        volume("config")["configMap"]["name"],
        configmap["metadata"]["name"]
    );
    let config_file = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .find_map(|a| a.as_str()?.strip_prefix("--config.file="))
        .expect("--config.file");
    assert_eq!(
        Path::new(config_file),
        mount("config").join("config.yaml"),
        "--config.file is the mounted ConfigMap key"
    );
    let config = Config::parse(
        configmap["data"]["config.yaml"]
            .as_str()
            .expect("config.yaml"),
        Path::new("configmap.yaml"),
    )
    .unwrap_or_else(|e| panic!("the ConfigMap's config: {e}"));
    assert!(volume("credentials")["secret"]["secretName"].is_string());
    let CredentialSource::Keys(keys) = &config.accounts[DEFAULT_ACCOUNT] else {
        panic!("the ConfigMap should name the Secret's key files");
    };
    for key in [&keys.access_key, &keys.secret_key] {
        match key {
            KeySource::File(path) => assert!(
                path.starts_with(mount("credentials")),
                "{} is not in the mounted Secret",
                path.display()
            ),
            other => panic!("the ConfigMap should read keys from the Secret's files, not {other}"),
        }
    }
}

/// The Dockerfile's instructions, continuation lines joined, comments and blank lines left out.
fn dockerfile_instructions(dockerfile: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut continued = false;
    for line in dockerfile.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (body, more) = match line.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (line, false),
        };
        match out.last_mut() {
            Some(last) if continued => {
                last.push(' ');
                last.push_str(body);
            }
            _ => out.push(body.to_string()),
        }
        continued = more;
    }
    out
}

#[test]
fn dockerfile_is_multi_stage_and_runs_as_non_root() {
    let dockerfile = text("deploy/Dockerfile");
    let instructions = dockerfile_instructions(&dockerfile);
    let froms: Vec<&String> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    // The bases are build arguments (CI passes bases made from Debian's packages), declared
    // before the first FROM with the registries' images as defaults.
    assert_eq!(
        froms,
        ["FROM ${BUILDER_IMAGE} AS build", "FROM ${RUNTIME_IMAGE}"],
        "multi-stage, bases from build args"
    );
    for (arg, default) in [
        ("BUILDER_IMAGE", "docker.io/library/rust:"),
        ("RUNTIME_IMAGE", "gcr.io/distroless/cc-debian12:nonroot"),
    ] {
        let declared = instructions[..2]
            .iter()
            .any(|l| l.starts_with(&format!("ARG {arg}={default}")));
        assert!(declared, "ARG {arg}={default}... before the first FROM");
    }
    let last_stage = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap();
    let final_stage = &instructions[last_stage..];
    assert!(final_stage.iter().any(|l| l.starts_with("COPY --from=")));
    let user = final_stage
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the final stage sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0, "non-root");
    assert!(final_stage.iter().any(|l| l == "EXPOSE 9787"));
    assert!(final_stage.iter().any(|l| l.starts_with("ENTRYPOINT [")));
    // No shell in the image: the health check is the binary itself, in exec form.
    let health = final_stage
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK");
    assert!(
        health.ends_with(r#"CMD ["/usr/local/bin/cdss-precheck-exporter", "healthcheck"]"#),
        "{health}"
    );
    // The OCI labels, with the version's default the crate's own.
    let labels = final_stage
        .iter()
        .find(|l| l.starts_with("LABEL "))
        .expect("LABEL");
    for key in [
        "title",
        "description",
        "version",
        "revision",
        "source",
        "licenses",
        "created",
    ] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{key}=")),
            "label org.opencontainers.image.{key}"
        );
    }
    let cargo = text("Cargo.toml");
    let field = |key: &str| {
        cargo
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap()
            .to_string()
    };
    assert!(
        final_stage.contains(&format!("ARG CDSS_VERSION={}", field("version"))),
        "ARG CDSS_VERSION defaults to Cargo.toml's version"
    );
    assert!(labels.contains(&format!(
        "org.opencontainers.image.licenses=\"{}\"",
        field("license")
    )));
    // cargo reads every target Cargo.toml declares, so their directories must be in the image
    // build (and not excluded from the context).
    let ignore = text("deploy/Dockerfile.dockerignore");
    for (section, dir) in [
        ("[[bench]]", "benches"),
        ("[[test]]", "tests"),
        ("[[example]]", "examples"),
    ] {
        if cargo.lines().any(|l| l.trim() == section) {
            assert!(
                instructions.contains(&format!("COPY {dir} ./{dir}")),
                "Cargo.toml declares {section}: the Dockerfile must COPY {dir}"
            );
            assert!(
                ignore.lines().any(|l| l.trim() == format!("!{dir}/")),
                "dockerignore lets {dir}/ in"
            );
        }
    }
    // Nothing secret is baked in.
    assert!(
        !dockerfile.contains("NCLOUD_SECRET_KEY="),
        "no secrets in the image"
    );
}

#[test]
fn dockerfile_instructions_join_continuations() {
    let lines = dockerfile_instructions("# c\nFROM a AS b\n\nRUN x \\\n # note\n && y\nUSER 1\n");
    assert_eq!(lines, ["FROM a AS b", "RUN x && y", "USER 1"]);
}

#[test]
fn systemd_unit_is_hardened_and_hands_over_the_credentials() {
    let unit = text("deploy/systemd/cdss-precheck-exporter.service");
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let has = |k: &str, v: &str| settings.iter().any(|(kk, vv)| *kk == k && *vv == v);
    for (k, v) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestartPreventExitStatus", "2"),
    ] {
        assert!(has(k, v), "{k}={v}");
    }
    // Each LoadCredential= name is the file the unit's comment tells the config to read.
    let names: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| *k == "LoadCredential")
        .map(|(_, v)| v.split(':').next().unwrap())
        .collect();
    assert_eq!(names, ["access_key", "secret_key"]);
    for name in names {
        let path = format!("/run/credentials/cdss-precheck-exporter.service/{name}");
        assert!(
            unit.contains(&format!("{name}_file: {path}")),
            "config line for {path}"
        );
    }
}

/// The README's quick start is `cargo run --release -- --demo`: with two binaries in the
/// package, that only works while `default-run` names the exporter.
#[test]
fn cargo_run_runs_the_exporter() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "cdss-precheck-exporter"))
        .expect("the package");
    let bins: Vec<&str> = package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(bins.contains(&"cdss-precheck-exporter"), "{bins:?}");
    if bins.len() > 1 {
        assert_eq!(
            package["default_run"], "cdss-precheck-exporter",
            "`cargo run` cannot choose among {bins:?}"
        );
    }
    assert!(
        text("README.md").contains("cargo run --release -- --demo"),
        "the quick start this test protects"
    );
}
