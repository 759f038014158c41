//! `newsroom stage promote NAME`: a shadow stage takes the place of the stage it shadows in the
//! pipeline file (see enrichment's README, "Shadow stages").
//!
//! `newsroom stage new --lang python|js|go NAME`: a new WebAssembly enrichment stage from the
//! templates in `examples/stages/templates/` (built into this binary), with the WIT it
//! implements (`wit/newsroom-stage.wit`) beside it, ready to build (`./build.sh`) and test in
//! its own language. The stage writes one field (`words`, the body's word count) until its
//! author makes it do something else; the printed steps say how to plug it into a pipeline.

use std::path::{Path, PathBuf};

use crate::Error;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StageCommand,
}

#[derive(clap::Subcommand)]
enum StageCommand {
    /// A new stage from a template: NAME/ with its source, tests, build script and the WIT.
    New(NewArgs),
    /// Make a shadow stage serve: in the pipeline file it takes the place and the name of the
    /// stage it shadows (whose table goes), written atomically; enrichment reloads the file.
    Promote(PromoteArgs),
}

#[derive(clap::Args)]
struct PromoteArgs {
    /// The shadow stage (`mode = "shadow"`).
    name: String,
    /// The pipeline file (enrichment's NEWSROOM_PIPELINE_FILE).
    #[arg(long, env = "NEWSROOM_PIPELINE_FILE")]
    pipeline: PathBuf,
}

#[derive(clap::Args)]
struct NewArgs {
    /// The stage's language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The stage's name: 1 to 40 of a-z, 0-9 and '-', starting with a letter.
    name: String,
    /// Where the stage's folder goes. Default: the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Lang {
    Python,
    Js,
    Go,
}

/// The WIT every stage implements.
const WIT: &str = include_str!("../../../../wit/newsroom-stage.wit");

/// Each language's template: (path in the stage's folder, text with `{{name}}` placeholders).
fn template(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Python => &[
            (
                "app.py",
                include_str!("../../../../examples/stages/templates/python/app.py"),
            ),
            (
                "build.sh",
                include_str!("../../../../examples/stages/templates/python/build.sh"),
            ),
            (
                "tests/test_words.py",
                include_str!("../../../../examples/stages/templates/python/tests/test_words.py"),
            ),
            (
                "words.py",
                include_str!("../../../../examples/stages/templates/python/words.py"),
            ),
        ],
        Lang::Js => &[
            (
                "build.sh",
                include_str!("../../../../examples/stages/templates/js/build.sh"),
            ),
            (
                "package-lock.json",
                include_str!("../../../../examples/stages/templates/js/package-lock.json"),
            ),
            (
                "package.json",
                include_str!("../../../../examples/stages/templates/js/package.json"),
            ),
            (
                "src/stage.js",
                include_str!("../../../../examples/stages/templates/js/src/stage.js"),
            ),
            (
                "src/words.js",
                include_str!("../../../../examples/stages/templates/js/src/words.js"),
            ),
            (
                "test/words.test.js",
                include_str!("../../../../examples/stages/templates/js/test/words.test.js"),
            ),
        ],
        Lang::Go => &[
            (
                "build.sh",
                include_str!("../../../../examples/stages/templates/go/build.sh"),
            ),
            (
                "go.mod",
                include_str!("../../../../examples/stages/templates/go/go.mod"),
            ),
            (
                "main.go",
                include_str!("../../../../examples/stages/templates/go/main.go"),
            ),
            (
                "package-lock.json",
                include_str!("../../../../examples/stages/templates/go/package-lock.json"),
            ),
            (
                "package.json",
                include_str!("../../../../examples/stages/templates/go/package.json"),
            ),
            (
                "sdk_native.go",
                include_str!("../../../../examples/stages/templates/go/sdk_native.go"),
            ),
            (
                "sdk_types.go",
                include_str!("../../../../examples/stages/templates/go/sdk_types.go"),
            ),
            (
                "sdk_wasip1.go",
                include_str!("../../../../examples/stages/templates/go/sdk_wasip1.go"),
            ),
            (
                "wasi_preview1_stub.wat",
                include_str!("../../../../examples/stages/templates/go/wasi_preview1_stub.wat"),
            ),
            (
                "words.go",
                include_str!("../../../../examples/stages/templates/go/words.go"),
            ),
            (
                "words_test.go",
                include_str!("../../../../examples/stages/templates/go/words_test.go"),
            ),
        ],
    }
}

fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Writes the stage `name` in `lang` under `dir/name`; its folder.
pub fn create(lang_name: &str, name: &str, dir: &Path) -> Result<PathBuf, Error> {
    let lang = match lang_name {
        "python" => Lang::Python,
        "js" => Lang::Js,
        "go" => Lang::Go,
        other => {
            return Err(Error::Usage(format!(
                "--lang: python, js or go (got {other:?})"
            )));
        }
    };
    write(lang, name, dir)
}

fn write(lang: Lang, name: &str, dir: &Path) -> Result<PathBuf, Error> {
    if !valid_name(name) {
        return Err(Error::Usage(format!(
            "NAME: 1 to 40 of a-z, 0-9 and '-', starting with a letter (got {name:?})"
        )));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(Error::Usage(format!("{} exists already", root.display())));
    }
    for (path, text) in template(lang) {
        let file = root.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, text.replace("{{name}}", name))?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    std::fs::create_dir_all(root.join("wit"))?;
    std::fs::write(root.join("wit/newsroom-stage.wit"), WIT)?;
    Ok(root)
}

/// The pipeline text with shadow stage `name` promoted: its table, without `mode` and
/// `shadows` and under the serving stage's name, in the serving stage's place. Comments and
/// layout elsewhere are kept.
pub fn promote(text: &str, name: &str) -> Result<String, Error> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::Usage(format!("the pipeline file: {e}")))?;
    let stages = doc
        .get_mut("stage")
        .and_then(|s| s.as_array_of_tables_mut())
        .ok_or_else(|| Error::Usage("the pipeline file has no [[stage]]".into()))?;
    let name_of = |t: &toml_edit::Table| t.get("name").and_then(|v| v.as_str()).map(str::to_owned);
    let shadow_at = stages
        .iter()
        .position(|t| name_of(t).as_deref() == Some(name))
        .ok_or_else(|| Error::Usage(format!("no stage {name:?} in the pipeline file")))?;
    let shadow = stages.get(shadow_at).cloned().unwrap_or_default();
    if shadow.get("mode").and_then(|v| v.as_str()) != Some("shadow") {
        return Err(Error::Usage(format!(
            "stage {name:?} is not in shadow mode"
        )));
    }
    let target = shadow
        .get("shadows")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Usage(format!("stage {name:?} names no stage it shadows")))?;
    let target_at = stages
        .iter()
        .position(|t| name_of(t).as_deref() == Some(target.as_str()))
        .ok_or_else(|| {
            Error::Usage(format!(
                "the stage it shadows, {target:?}, is not in the file"
            ))
        })?;
    let mut promoted = shadow;
    promoted.remove("mode");
    promoted.remove("shadows");
    promoted.insert("name", toml_edit::value(target.as_str()));
    if let Some(slot) = stages.get_mut(target_at) {
        // Written where the serving stage was (tables print in their document position).
        if let Some(position) = slot.position() {
            promoted.set_position(Some(position));
        }
        *slot = promoted;
    }
    stages.remove(shadow_at);
    Ok(doc.to_string())
}

pub fn run(args: Args) -> Result<(), Error> {
    let a = match args.command {
        StageCommand::New(a) => a,
        StageCommand::Promote(p) => {
            let text = std::fs::read_to_string(&p.pipeline)?;
            let promoted = promote(&text, &p.name)?;
            // A new file renamed over the old: enrichment never reads half of it.
            let tmp = p.pipeline.with_extension("promote.tmp");
            std::fs::write(&tmp, promoted)?;
            std::fs::rename(&tmp, &p.pipeline)?;
            eprintln!(
                "{} now serves in {}; enrichment reloads the file (a new pipeline id on every story from now)",
                p.name,
                p.pipeline.display()
            );
            return Ok(());
        }
    };
    let root = write(a.lang, &a.name, &a.dir)?;
    let (setup, test) = match a.lang {
        Lang::Python => (
            "pip install --user componentize-py==0.25.1",
            "python3 -m pytest -q tests",
        ),
        Lang::Js => ("npm ci", "node --test"),
        Lang::Go => (
            "npm ci   # jco, which makes the Go module a component",
            "go test ./...",
        ),
    };
    println!("{}", root.display());
    eprintln!(
        "next:\n  cd {dir}\n  {setup}\n  {test}\n  ./build.sh        # writes target/stages/{name}.wasm\n\nthen in the pipeline file:\n  [[stage]]\n  name = \"{name}\"\n  type = \"wasm\"\n  timeout_ms = 200\n  params = {{ module = \"<path to>/{name}.wasm\" }}",
        dir = root.display(),
        name = a.name,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_stage_has_its_template_with_the_name_and_the_wit() {
        let dir = std::env::temp_dir().join(format!("newsroom-stage-new-{}", std::process::id()));
        for lang in ["python", "js", "go"] {
            let root = create(lang, &format!("my-{lang}"), &dir).unwrap();
            assert!(root.join("build.sh").is_file(), "{lang}");
            assert!(root.join("wit/newsroom-stage.wit").is_file(), "{lang}");
            let all: String = template(match lang {
                "python" => Lang::Python,
                "js" => Lang::Js,
                _ => Lang::Go,
            })
            .iter()
            .map(|(p, _)| std::fs::read_to_string(root.join(p)).unwrap())
            .collect();
            assert!(
                !all.contains("{{name}}"),
                "{lang}: every placeholder replaced"
            );
            assert!(
                all.contains(&format!("my-{lang}")),
                "{lang}: the name is in it"
            );
        }
        assert!(matches!(create("rust", "x", &dir), Err(Error::Usage(_))));
        assert!(matches!(
            create("go", "Bad_Name", &dir),
            Err(Error::Usage(_))
        ));
        assert!(
            matches!(create("go", "my-go", &dir), Err(Error::Usage(_))),
            "exists"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn promoting_a_shadow_puts_it_in_the_serving_stages_place_and_name() {
        let text = r#"# the newsroom's pipeline
[[stage]]
name = "language"
type = "language"

[[stage]]
name = "sponsored"
type = "wasm"
params = { module = "sponsored-v1.wasm" }

[[stage]]
name = "counts"
type = "counts"

# the candidate
[[stage]]
name = "sponsored-v2"
type = "wasm"
mode = "shadow"
shadows = "sponsored"
params = { module = "sponsored-v2.wasm" }
"#;
        let out = promote(text, "sponsored-v2").unwrap();
        let doc: toml_edit::DocumentMut = out.parse().unwrap();
        let names: Vec<&str> = doc["stage"]
            .as_array_of_tables()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["language", "sponsored", "counts"]);
        assert!(
            out.contains("sponsored-v2.wasm") && !out.contains("sponsored-v1.wasm"),
            "{out}"
        );
        assert!(!out.contains("mode") && !out.contains("shadows"), "{out}");
        assert!(
            out.starts_with("# the newsroom's pipeline"),
            "comments kept: {out}"
        );
        assert!(
            matches!(promote(text, "counts"), Err(Error::Usage(_))),
            "not a shadow"
        );
        assert!(matches!(promote(text, "nope"), Err(Error::Usage(_))));
    }
}
