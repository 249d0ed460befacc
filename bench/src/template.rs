//! Each function's configured memory, from template.yaml: the function's own `MemorySize`, else
//! `Globals.Function.MemorySize`, else [`DEFAULT_MEMORY_MB`].
//!
//! Read with serde_yaml_ng, which keeps CloudFormation's short tags (`!Ref`, `!Sub`, ...) as tagged
//! values, so the template parses as it is. A function is known by its `CodeUri: functions/<name>`;
//! a `MemorySize` that is not a plain number (say `!Ref Memory`) counts as not given. A template
//! that cannot be read gives no sizes (every function the default), and the report says where each
//! figure came from.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

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
    pub fn parse(text: &str) -> Result<Self, serde_yaml_ng::Error> {
        let template: Value = serde_yaml_ng::from_str(text)?;
        let globals = megabytes(&template["Globals"]["Function"]["MemorySize"]);
        let functions = template["Resources"]
            .as_mapping()
            .into_iter()
            .flat_map(Mapping::values)
            .filter_map(|resource| {
                let properties = &resource["Properties"];
                let code_uri = properties["CodeUri"].as_str()?;
                let name = code_uri.trim_end_matches('/').rsplit('/').next()?;
                Some((name.to_owned(), megabytes(&properties["MemorySize"])?))
            })
            .collect();
        Ok(Self { globals, functions })
    }

    /// Reads `path`; a missing or unreadable template gives no sizes (every function the default),
    /// and the error says why.
    pub fn read(path: &std::path::Path) -> (Self, Option<String>) {
        let parsed = std::fs::read_to_string(path)
            .map_err(|err| err.to_string())
            .and_then(|text| Self::parse(&text).map_err(|err| err.to_string()));
        match parsed {
            Ok(sizes) => (sizes, None),
            Err(err) => (Self::default(), Some(format!("{}: {err}", path.display()))),
        }
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

/// A memory size in MB: a plain number that fits.
fn megabytes(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|mb| u32::try_from(mb).ok())
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

    fn parse(text: &str) -> MemorySizes {
        MemorySizes::parse(text).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn a_function_size_wins_over_globals_and_globals_over_the_default() {
        let sizes = parse(TEMPLATE);
        assert_eq!(sizes.globals, Some(256));
        assert_eq!(sizes.memory_mb("login"), (512, Source::Function));
        assert_eq!(sizes.memory_mb("health"), (256, Source::Globals));
        assert_eq!(sizes.memory_mb("get_user"), (256, Source::Globals));
        assert_eq!(sizes.functions.len(), 1, "{sizes:?}");
    }

    #[test]
    fn without_any_size_the_default_applies() {
        let sizes = parse("Resources:\n  F:\n    Properties:\n      CodeUri: functions/f\n");
        assert_eq!(sizes.memory_mb("f"), (DEFAULT_MEMORY_MB, Source::Default));
        assert_eq!(parse("").memory_mb("f").1, Source::Default);
    }

    #[test]
    fn four_space_indentation_reads_the_same() {
        let text = "Globals:\n    Function:\n        MemorySize: 128\nResources:\n    H:\n        Properties:\n            MemorySize: 1024\n            CodeUri: functions/health\n";
        let sizes = parse(text);
        assert_eq!(sizes.memory_mb("health"), (1024, Source::Function));
        assert_eq!(sizes.memory_mb("login"), (128, Source::Globals));
    }

    #[test]
    fn short_tags_parse_and_a_size_that_is_not_a_number_is_not_given() {
        let text = r#"
Parameters:
  Memory:
    Type: Number
Globals:
  Function:
    MemorySize: !Ref Memory
Resources:
  HealthFunction:
    Properties:
      CodeUri: functions/health
      MemorySize: 128
      Environment:
        Variables:
          TABLE_NAME: !Ref UsersTable
          ARN: !GetAtt UsersTable.Arn
          URL: !Sub "https://${AWS::Region}.example.com"
  LoginFunction:
    Properties:
      CodeUri: functions/login
      MemorySize: !If [IsProd, 1024, 512]
"#;
        let sizes = parse(text);
        assert_eq!(sizes.globals, None);
        assert_eq!(sizes.memory_mb("health"), (128, Source::Function));
        assert_eq!(
            sizes.memory_mb("login"),
            (DEFAULT_MEMORY_MB, Source::Default)
        );
    }

    #[test]
    fn a_template_that_cannot_be_read_gives_the_default_and_says_why() {
        assert!(MemorySizes::parse("Resources: [unclosed").is_err());
        let (sizes, error) = MemorySizes::read(std::path::Path::new("/nonexistent/template.yaml"));
        assert_eq!(sizes, MemorySizes::default());
        assert!(error.is_some_and(|e| e.contains("/nonexistent/template.yaml")));
    }

    #[test]
    fn the_project_template_is_readable() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let (sizes, error) = MemorySizes::read(&path);
        assert_eq!(error, None);
        for function in ["health", "create_user", "login", "get_user"] {
            let (mb, source) = sizes.memory_mb(function);
            assert_eq!(source, Source::Function, "{function}");
            assert!((128..=10240).contains(&mb), "{function}: {mb} MB");
        }
    }
}
