//! Each function's configured memory, from template.yaml: the function's own `MemorySize`, else
//! `Globals.Function.MemorySize`, else [`DEFAULT_MEMORY_MB`].
//!
//! A deliberately small reader of the template's block-style YAML (the only style it uses): it
//! follows the key path by indentation, skips block scalars and list items, and knows a function by
//! its `CodeUri: functions/<name>`. Anything it cannot read falls back to the default, and the
//! report says where each figure came from.

use std::collections::BTreeMap;

/// Lambda's memory when nothing says otherwise here (the brief's default, also the template's).
pub const DEFAULT_MEMORY_MB: u32 = 256;

/// Where a function's memory size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The function's own `Properties.MemorySize`.
    Function,
    /// `Globals.Function.MemorySize`.
    Globals,
    /// Neither: [`DEFAULT_MEMORY_MB`].
    Default,
}

impl Source {
    /// How the report names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Function => "template.yaml, function",
            Self::Globals => "template.yaml, Globals",
            Self::Default => "default",
        }
    }
}

/// The memory sizes a template declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySizes {
    /// `Globals.Function.MemorySize`.
    pub globals: Option<u32>,
    /// Per function (the last segment of its `CodeUri`).
    pub functions: BTreeMap<String, u32>,
}

impl MemorySizes {
    /// Reads a template's text.
    pub fn parse(text: &str) -> Self {
        let mut sizes = Self::default();
        let mut code_uris: BTreeMap<String, String> = BTreeMap::new();
        let mut memory: BTreeMap<String, u32> = BTreeMap::new();
        // (indent, key) of the keys the current line is nested in.
        let mut path: Vec<(usize, String)> = Vec::new();
        let mut block_scalar_indent: Option<usize> = None;
        for raw in text.lines() {
            let line = strip_comment(raw);
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let Some(block) = block_scalar_indent {
                if indent > block {
                    continue;
                }
                block_scalar_indent = None;
            }
            if trimmed.starts_with('-') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once(':') else {
                continue;
            };
            let key = key.trim().trim_matches(['"', '\'']).to_owned();
            let value = value.trim().trim_matches(['"', '\'']);
            while path.last().is_some_and(|(i, _)| *i >= indent) {
                path.pop();
            }
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_indent = Some(indent);
            }
            let keys: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
            match (keys.as_slice(), key.as_str()) {
                (["Globals", "Function"], "MemorySize") => sizes.globals = value.parse().ok(),
                (["Resources", resource, "Properties"], "MemorySize") => {
                    if let Ok(mb) = value.parse() {
                        memory.insert((*resource).to_owned(), mb);
                    }
                }
                (["Resources", resource, "Properties"], "CodeUri") => {
                    let name = value
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or(value);
                    code_uris.insert((*resource).to_owned(), name.to_owned());
                }
                _ => {}
            }
            path.push((indent, key));
        }
        for (resource, function) in code_uris {
            if let Some(mb) = memory.get(&resource) {
                sizes.functions.insert(function, *mb);
            }
        }
        sizes
    }

    /// Reads `path`; a missing or unreadable template gives no sizes (every function the default).
    pub fn read(path: &std::path::Path) -> Self {
        std::fs::read_to_string(path)
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// The memory of `function`, and where it came from.
    pub fn memory_mb(&self, function: &str) -> (u32, Source) {
        if let Some(mb) = self.functions.get(function) {
            (*mb, Source::Function)
        } else if let Some(mb) = self.globals {
            (mb, Source::Globals)
        } else {
            (DEFAULT_MEMORY_MB, Source::Default)
        }
    }
}

/// The line without a trailing ` # comment` (a `#` inside a quoted value is rare in templates and
/// not handled).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Description: >
  A description: with a colon
  MemorySize: 9999
Globals:
  Function:
    Runtime: provided.al2023
    MemorySize: 256   # the default for all
    Environment:
      Variables:
        MemorySize: 1
Resources:
  HealthFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/health
      Policies:
        - Statement:
            - Effect: Allow
  LoginFunction:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 512
      CodeUri: "functions/login/"
  UsersTable:
    Type: AWS::DynamoDB::Table
    Properties:
      MemorySize: 7
"#;

    #[test]
    fn a_function_size_wins_over_globals_and_globals_over_the_default() {
        let sizes = MemorySizes::parse(TEMPLATE);
        assert_eq!(sizes.globals, Some(256));
        assert_eq!(sizes.memory_mb("login"), (512, Source::Function));
        assert_eq!(sizes.memory_mb("health"), (256, Source::Globals));
        assert_eq!(sizes.memory_mb("get_user"), (256, Source::Globals));
        assert_eq!(sizes.functions.len(), 1, "{sizes:?}");
    }

    #[test]
    fn without_any_size_the_default_applies() {
        let sizes =
            MemorySizes::parse("Resources:\n  F:\n    Properties:\n      CodeUri: functions/f\n");
        assert_eq!(sizes.memory_mb("f"), (DEFAULT_MEMORY_MB, Source::Default));
        assert_eq!(MemorySizes::parse("").memory_mb("f").1, Source::Default);
    }

    #[test]
    fn four_space_indentation_reads_the_same() {
        let text = "Globals:\n    Function:\n        MemorySize: 128\nResources:\n    H:\n        Properties:\n            MemorySize: 1024\n            CodeUri: functions/health\n";
        let sizes = MemorySizes::parse(text);
        assert_eq!(sizes.memory_mb("health"), (1024, Source::Function));
        assert_eq!(sizes.memory_mb("login"), (128, Source::Globals));
    }

    #[test]
    fn the_project_template_is_readable() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let sizes = MemorySizes::read(&path);
        for function in ["health", "create_user", "login", "get_user"] {
            let (mb, _) = sizes.memory_mb(function);
            assert!((128..=10240).contains(&mb), "{function}: {mb} MB");
        }
    }
}
