//! Bakes the git revision into the binary for `cdss_exporter_build_info`: `CDSS_BUILD_REVISION`
//! from the environment when set (container builds have no `.git`), else `git rev-parse`.
fn main() {
    let from_env = std::env::var("CDSS_BUILD_REVISION")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let revision = from_env.unwrap_or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    });
    println!("cargo:rustc-env=CDSS_BUILD_REVISION={revision}");
    println!("cargo:rerun-if-env-changed=CDSS_BUILD_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
