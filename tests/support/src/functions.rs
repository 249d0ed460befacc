//! The function crates: the workspace's packages whose manifest is under `functions/`, as
//! `cargo metadata` lists them (what `scripts/functions.sh` prints too). Each is one endpoint, one
//! Lambda binary named like its package. The tests and the bench take the list from here, so a
//! new endpoint is picked up without an edit to either.

use std::{path::PathBuf, process::Command, sync::OnceLock};

use serde_json::Value;

/// A function crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCrate {
    /// Its package name: the function's name (the binary, the EMF `Function` dimension).
    pub name: String,
    /// Its directory's name under `functions/` (template.yaml's `CodeUri: functions/<dir>`).
    pub dir: String,
    /// The names of its binary targets.
    pub bins: Vec<String>,
}

/// Every function crate, sorted by name; read once per process. `Err` says why cargo could not
/// list them.
pub fn crates() -> Result<&'static [FunctionCrate], String> {
    static CRATES: OnceLock<Result<Vec<FunctionCrate>, String>> = OnceLock::new();
    CRATES
        .get_or_init(|| from_metadata(&metadata()?))
        .as_deref()
        .map_err(Clone::clone)
}

/// The function names (package names), sorted; panics when cargo cannot list them (for tests).
pub fn names() -> Vec<&'static str> {
    crates()
        .unwrap_or_else(|err| panic!("{err}"))
        .iter()
        .map(|c| c.name.as_str())
        .collect()
}

/// `cargo metadata --no-deps` of the workspace, as JSON.
fn metadata() -> Result<Value, String> {
    // Under cargo (tests, benches) CARGO is the cargo that builds us; elsewhere the one on PATH.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(crate::root())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|err| format!("cargo metadata: {err}"))
}

/// The packages of `metadata` whose manifest is `<workspace root>/functions/<dir>/Cargo.toml`.
fn from_metadata(metadata: &Value) -> Result<Vec<FunctionCrate>, String> {
    let root = PathBuf::from(
        metadata["workspace_root"]
            .as_str()
            .ok_or("cargo metadata has no workspace_root")?,
    );
    let functions = root.join("functions");
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        let Some(dir) = manifest.parent().filter(|d| d.parent() == Some(&functions)) else {
            continue;
        };
        let bins = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.contains(&"bin".into()))
            })
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        found.push(FunctionCrate {
            name: package["name"].as_str().unwrap_or_default().to_owned(),
            dir: dir
                .file_name()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bins,
        });
    }
    if found.is_empty() {
        return Err(format!(
            "cargo metadata lists no package under {}",
            functions.display()
        ));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn only_packages_directly_under_functions_are_functions() {
        let metadata = json!({
            "workspace_root": "/w",
            "packages": [
                {"name": "shared", "manifest_path": "/w/shared/Cargo.toml", "targets": [{"kind": ["lib"], "name": "shared"}]},
                {"name": "login", "manifest_path": "/w/functions/login/Cargo.toml",
                 "targets": [{"kind": ["lib"], "name": "login"}, {"kind": ["bin"], "name": "login"}]},
                {"name": "nested", "manifest_path": "/w/functions/a/b/Cargo.toml", "targets": []},
                {"name": "health", "manifest_path": "/w/functions/health/Cargo.toml", "targets": [{"kind": ["bin"], "name": "health"}]},
            ],
        });
        let found = from_metadata(&metadata).unwrap();
        let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["health", "login"]);
        assert_eq!(found[1].dir, "login");
        assert_eq!(found[1].bins, ["login"]);
        assert!(
            from_metadata(&json!({"workspace_root": "/w", "packages": []}))
                .unwrap_err()
                .contains("no package under")
        );
    }

    #[test]
    fn this_workspace_has_its_function_crates() {
        let names = names();
        for name in ["health", "create_user", "login", "get_user"] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        for krate in crates().unwrap() {
            assert!(
                crate::root()
                    .join("functions")
                    .join(&krate.dir)
                    .join("Cargo.toml")
                    .exists(),
                "{krate:?}"
            );
        }
    }
}
