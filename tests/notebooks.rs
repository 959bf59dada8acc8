//! The evcxr notebooks are valid, use the `rust` kernel, and hold exactly the code of
//! their `examples/notebook_*.rs` twins (which `cargo test --examples` compiles), so every
//! library function a notebook calls exists.

use std::path::Path;

/// The code cells `scripts/notebooks.py` derives from an example: the body of `main`
/// split at `// ---` lines, de-indented by four spaces.
fn expected_cells(example: &str) -> Vec<String> {
    let body = example
        .split_once("fn main() -> Result<(), Box<dyn std::error::Error>> {\n")
        .expect("example has the notebook main signature")
        .1;
    let body = &body[..body.rfind("    Ok(())\n}").expect("main ends with Ok(())")];
    let mut cells = Vec::new();
    for part in body.split("    // ---\n") {
        let lines: Vec<&str> = part
            .trim_end_matches('\n')
            .split('\n')
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect();
        let text = lines.join("\n").trim_matches('\n').to_string();
        if !text.is_empty() {
            cells.push(text);
        }
    }
    cells
}

/// Every notebook parses as JSON, runs on the `rust` kernel, starts by adding the crate
/// with `:dep`, and its code equals its example's.
#[test]
fn notebooks_match_their_compiled_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix("notebook_"))
        else {
            continue;
        };
        let nb_path = root.join("notebooks").join(format!("{name}.ipynb"));
        let nb: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&nb_path).unwrap_or_else(|_| {
                panic!("{} missing: run scripts/notebooks.py", nb_path.display())
            }))
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", nb_path.display()));
        assert_eq!(
            nb["metadata"]["kernelspec"]["name"], "rust",
            "{name}: kernel"
        );
        let code: Vec<String> = nb["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .filter(|c| c["cell_type"] == "code")
            .map(|c| {
                c["source"]
                    .as_array()
                    .expect("source")
                    .iter()
                    .map(|l| l.as_str().unwrap_or(""))
                    .collect::<String>()
            })
            .collect();
        assert_eq!(
            code.first().map(String::as_str),
            Some(":dep scrobust = { path = \"..\" }"),
            "{name}: first cell"
        );
        let example = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            code[1..].to_vec(),
            expected_cells(&example),
            "{name}: notebook differs from its example; run scripts/notebooks.py"
        );
        n += 1;
    }
    assert!(
        n >= 7,
        "expected an overview and six figure notebooks, found {n}"
    );
}
