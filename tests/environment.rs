//! `azureml_environment` transitions with the real Terraform CLI against the emulator:
//! package order, in-place metadata edits, `tags = {}`, import (CLI and `import {}` blocks).

mod support;

use support::*;

const ENV: &str = r#"
variable "conda" {
  type    = list(string)
  default = ["matplotlib", "numpy"]
}

variable "pip" {
  type    = list(string)
  default = ["jupyterlab", "monai==0.8"]
}

variable "description" {
  type    = string
  default = "Clara Train"
}

variable "tags" {
  type    = map(string)
  default = { project = "clara" }
}

resource "azureml_environment" "e" {
  provider       = clara
  name           = "clara_env"
  image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  conda_packages = var.conda
  pip_packages   = var.pip
  python_version = "3.8"
  description    = var.description
  tags           = var.tags
}
"#;

/// The environment version's ARM id, from the state.
fn env_id(ws: &Workspace) -> String {
    let state: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    state["values"]["root_module"]["resources"][0]["values"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn env_writes(ws: &Workspace) -> Vec<String> {
    ws.emulator
        .writes()
        .iter()
        .filter(|r| {
            r["op"]
                .as_str()
                .unwrap_or_default()
                .starts_with("environment.")
        })
        .map(|r| {
            format!(
                "{} {}",
                r["op"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn environment_transitions_plan_and_apply_cleanly() {
    let ws = Workspace::inline(ENV, emulator_config());
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    let versions = || {
        ws.emulator.admin(reqwest::Method::GET, "jobs", None)["environments"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(versions(), 1);

    // Reordered packages: the same environment, no new version.
    let reordered = [
        "-var=conda=[\"numpy\",\"matplotlib\"]",
        "-var=pip=[\"monai==0.8\",\"jupyterlab\"]",
    ];
    ws.assert_no_changes(&reordered);
    ws.apply(&reordered);
    assert_eq!(versions(), 1);

    // Description and tags update in place: same version, same id.
    let id_before = ws.ok(&["state", "show", "-no-color", "azureml_environment.e"]);
    let edited = [
        "-var=description=Clara Train 3",
        "-var=tags={project=\"clara\",team=\"ct\"}",
    ];
    let (code, text) = ws.plan(&edited);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("updated in-place") && text.contains("0 to add, 1 to change, 0 to destroy"),
        "{text}"
    );
    assert!(
        !text.contains("known after apply"),
        "nothing becomes unknown:\n{text}"
    );
    ws.apply(&edited);
    ws.assert_no_changes(&edited);
    assert_eq!(versions(), 1, "no new version for metadata");
    let id_line = |s: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with("id "))
            .map(str::to_string)
    };
    assert_eq!(
        id_line(&id_before),
        id_line(&ws.ok(&["state", "show", "-no-color", "azureml_environment.e"]))
    );
    let body = ws.emulator.arm_get(&env_id(&ws));
    assert_eq!(body["properties"]["description"], "Clara Train 3");
    assert_eq!(body["properties"]["tags"]["team"], "ct");

    // tags = {} and no tags are the same to Azure: applying either leaves a clean plan and
    // writes nothing when only that changes.
    let empty = ["-var=description=Clara Train 3", "-var=tags={}"];
    ws.apply(&empty);
    ws.assert_no_changes(&empty);
    let writes = env_writes(&ws).len();
    let (code, text) = ws.plan(&["-var=description=Clara Train 3", "-var=tags=null"]);
    assert!(code == 0 || text.contains("tags"), "{text}");
    ws.apply(&["-var=description=Clara Train 3", "-var=tags=null"]);
    ws.assert_no_changes(&["-var=description=Clara Train 3", "-var=tags=null"]);
    assert_eq!(
        env_writes(&ws).len(),
        writes,
        "{{}} → no tags sends nothing"
    );
    assert_eq!(versions(), 1);

    // A package change is new content: a new version, planned as a replacement.
    let (code, text) = ws.plan(&[
        "-var=conda=[\"matplotlib\",\"scipy\"]",
        "-var=tags=null",
        "-var=description=Clara Train 3",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("must be replaced"), "{text}");

    // Import into empty state: the configuration that created it plans "No changes".
    let last = ["-var=description=Clara Train 3", "-var=tags=null"];
    let id = env_id(&ws);
    ws.ok(&["state", "rm", "azureml_environment.e"]);
    let mut import = vec!["import", "-input=false", "-no-color"];
    import.extend(last);
    import.extend(["azureml_environment.e", id.as_str()]);
    ws.ok(&import);
    ws.assert_no_changes(&last);

    // Destroy archives the version (kept for jobs that used it).
    let mut destroy = vec!["destroy", "-auto-approve", "-no-color"];
    destroy.extend(last);
    ws.ok(&destroy);
    let archived = ws.emulator.arm_get(&id);
    assert_eq!(archived["properties"]["isArchived"], true);
}

/// `import {}` with `-generate-config-out`: the generated configuration plans clean.
#[test]
fn generated_import_configuration_plans_clean() {
    let ws = Workspace::inline(ENV, emulator_config());
    ws.apply(&[]);
    let id = env_id(&ws);
    ws.ok(&["state", "rm", "azureml_environment.e"]);
    // Only the provider header and an import block: Terraform writes the resource.
    let header = std::fs::read_to_string(ws.dir.join("main.tf")).unwrap();
    let header = &header[..header.find("variable \"conda\"").unwrap()];
    std::fs::write(
        ws.dir.join("main.tf"),
        format!("{header}import {{\n  to       = azureml_environment.e\n  id       = \"{id}\"\n  provider = clara\n}}\n"),
    )
    .unwrap();
    let (code, text) = ws.tf(&[
        "plan",
        "-input=false",
        "-no-color",
        "-generate-config-out=generated.tf",
    ]);
    assert!(code == 0 || code == 2, "{text}");
    let generated = std::fs::read_to_string(ws.dir.join("generated.tf")).unwrap();
    assert!(generated.contains("conda_packages"), "{generated}");
    assert!(
        generated
            .lines()
            .filter(|l| l.trim_start().starts_with("conda_file"))
            .all(|l| l.trim_end().ends_with("null")),
        "the rendered conda file reads back as package lists:\n{generated}"
    );
    ws.apply(&[]);
    let (code, text) = ws.plan(&[]);
    assert_eq!(
        code, 0,
        "generated config plans clean:\n{generated}\n{text}"
    );
    assert_eq!(
        ws.emulator.admin(reqwest::Method::GET, "jobs", None)["environments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// An empty package entry is refused at validate, naming the attribute; nothing is written.
#[test]
fn empty_package_names_are_refused() {
    let ws = Workspace::inline(ENV, emulator_config());
    for (var, attr) in [
        ("-var=conda=[\"matplotlib\",\"\"]", "conda_packages"),
        ("-var=pip=[\" \"]", "pip_packages"),
    ] {
        let (code, text) = ws.plan(&[var]);
        assert_eq!(code, 1, "{var}:\n{text}");
        assert!(
            text.contains(attr) && text.contains("non-empty package spec"),
            "{var}: the diagnostic names {attr}:\n{text}"
        );
    }
    assert!(
        ws.emulator.writes().is_empty(),
        "{:?}",
        ws.emulator.writes()
    );
}
