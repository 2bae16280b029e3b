//! Output for people and for scripts, chosen once with the global `-o/--output`
//! (`--json` is `-o json`): `table` is the form for people — aligned tables with headers for
//! lists (like `kubectl get`), aligned `key: value` lines for one object, one line for an
//! action —, `json` (pretty) and `yaml` print the same value the API answers. A command that
//! streams (`sub`, `consumer next`, `bench`) prints one document per item: a JSON object per
//! line, or YAML documents each opened by `---`. YAML is YAML 1.2 as `serde_yaml_ng` writes it:
//! a YAML 1.1 reader (PyYAML) takes some plain strings for other types (`yes` for a boolean, an
//! RFC 3339 time for a timestamp); read it with a YAML 1.2 reader, or use JSON.
//!
//! Failures print here too ([`Failure`]): under `json` or `yaml` as
//! `{"error": {"code", "message", "details"?, "hint"?}}` on standard error, otherwise as one
//! `error:` line (the lines of each problem the server listed under it) and an optional `hint:`
//! line.

use std::borrow::Cow;
use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;

/// How a command prints what it read or did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For people: tables with headers, `key: value` lines, one line per action.
    #[default]
    Table,
    /// Pretty JSON; one compact object per line for a stream of items.
    Json,
    /// YAML; one `---` document per item for a stream of items.
    Yaml,
}

impl Format {
    /// Whether the output is for scripts (`json` or `yaml`).
    pub(crate) fn is_data(self) -> bool {
        self != Format::Table
    }

    /// Prints `value` as one document, or calls `human` for the form for people.
    pub(crate) fn print<T: Serialize + ?Sized>(
        self,
        out: &mut dyn Write,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        self.emit(out, value, human, false)
    }

    /// Prints `value` as one item of a stream (a JSON line, a `---` YAML document), or calls
    /// `human` for its line for people.
    pub(crate) fn print_item<T: Serialize + ?Sized>(
        self,
        out: &mut dyn Write,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        self.emit(out, value, human, true)
    }

    /// [`Format::print`], or [`Format::print_item`] when `item`.
    fn emit<T: Serialize + ?Sized>(
        self,
        out: &mut dyn Write,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> Result<()>,
        item: bool,
    ) -> Result<()> {
        match (self, item) {
            (Format::Table, _) => human(out),
            (Format::Json, false) => json(out, value),
            (Format::Json, true) => {
                serde_json::to_writer(&mut *out, value)?;
                writeln!(out)?;
                Ok(())
            }
            (Format::Yaml, item) => {
                if item {
                    writeln!(out, "---")?;
                }
                yaml(out, value)
            }
        }
    }
}

/// A table with a header row; columns are padded to their widest cell.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new(headers: &[&str]) -> Self {
        Self {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds one row; missing cells print empty.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the table, two spaces between columns, no trailing blanks.
    pub(crate) fn write(&self, out: &mut dyn Write) -> Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                line.push_str(cell);
                if c + 1 < columns {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `key: value` lines with the values aligned, for one object shown to people.
pub(crate) fn write_aligned(lines: &[(&str, String)], out: &mut dyn Write) -> Result<()> {
    let width = lines
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (key, value) in lines {
        writeln!(
            out,
            "{:width$}  {value}",
            format!("{key}:"),
            width = width + 1
        )?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON followed by a newline.
pub(crate) fn json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Writes `value` as one YAML document (block style, ending in a newline).
pub(crate) fn yaml<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> Result<()> {
    let text = serde_yaml_ng::to_string(value)?;
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// The code of a failure found by the CLI itself, not by the server: bad arguments, an
/// unreadable file (exit 2).
pub(crate) const USAGE: &str = "USAGE";

/// The code of a server that could not be reached (exit 2).
pub(crate) const UNREACHABLE: &str = "UNREACHABLE";

/// The code of an answer the CLI checked and found false: a checkpoint signature or a proof
/// that does not verify (exit 1).
pub(crate) const NOT_VERIFIED: &str = "NOT_VERIFIED";

/// Why a command failed, with the exit code it ends with: the server's refusals keep its
/// stable code (`FORBIDDEN`, `STREAM_NOT_FOUND`, …) and details and exit 1; the CLI's own
/// failures are [`USAGE`] or [`UNREACHABLE`] (exit 2) or [`NOT_VERIFIED`] (exit 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Failure {
    /// Stable machine-readable code.
    pub(crate) code: Cow<'static, str>,
    /// What went wrong, without restating the code.
    pub(crate) message: String,
    /// Structured detail from the server (violations, retry delay); absent when there is none.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub(crate) details: Value,
    /// What to do about it, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
    /// The process's exit code: 1 refused or invalid, 2 usage or unreachable.
    #[serde(skip)]
    pub(crate) exit: u8,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// A refusal with `code` (exit 1).
    pub(crate) fn refused(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            details: Value::Null,
            hint: None,
            exit: 1,
        }
    }

    /// A usage error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            exit: 2,
            ..Failure::refused(USAGE, message)
        }
    }

    /// With this hint.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// With these details.
    pub(crate) fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The failure an error of a command stands for: a [`Failure`] it carries, or else a usage
    /// error (exit 2) whose message is the whole chain of causes.
    pub(crate) fn of(err: &anyhow::Error) -> Failure {
        match err.downcast_ref::<Failure>() {
            Some(failure) => failure.clone(),
            None => Failure::usage(format!("{err:#}")),
        }
    }

    /// Prints the failure to `err` in `format`.
    pub(crate) fn print(&self, format: Format, err: &mut dyn Write) -> Result<()> {
        #[derive(Serialize)]
        struct Doc<'a> {
            error: &'a Failure,
        }
        let doc = Doc { error: self };
        match format {
            Format::Json => {
                serde_json::to_writer(&mut *err, &doc)?;
                writeln!(err)?;
            }
            Format::Yaml => yaml(err, &doc)?,
            Format::Table => {
                if self.code == USAGE || self.code == UNREACHABLE {
                    writeln!(err, "error: {}", self.message)?;
                } else {
                    writeln!(err, "error: {}: {}", self.code, self.message)?;
                }
                for problem in problems(&self.details) {
                    writeln!(err, "  {problem}")?;
                }
                if let Some(hint) = &self.hint {
                    writeln!(err, "hint: {hint}")?;
                }
            }
        }
        Ok(())
    }
}

/// The problems a server's details list, one line each (`pointer: message`): the violations of
/// an invalid envelope, the validation errors of a contract, the failed items of a batch.
fn problems(details: &Value) -> Vec<String> {
    let listed = ["violations", "errors", "failed"]
        .iter()
        .find_map(|key| details.get(key).and_then(Value::as_array));
    let Some(items) = listed else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let at = ["path", "instance_pointer", "seq"]
                .iter()
                .find_map(|key| item.get(key))
                .map(|at| match at {
                    Value::String(s) if s.is_empty() => "(document)".to_owned(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            let message = item
                .get("message")
                .or_else(|| item.pointer("/error/message"))
                .and_then(Value::as_str)
                .map_or_else(|| item.to_string(), str::to_owned);
            match at {
                Some(at) => format!("{at}: {message}"),
                None => message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    fn printed(format: Format, value: &Value) -> String {
        let mut out = Vec::new();
        format
            .print(&mut out, value, |out| Ok(writeln!(out, "human")?))
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn item(format: Format, value: &Value) -> String {
        let mut out = Vec::new();
        format
            .print_item(&mut out, value, |out| Ok(writeln!(out, "line")?))
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn given_cells_of_mixed_width_when_written_then_columns_align() {
        let mut table = Table::new(&["SUBJECT", "LATEST"]);
        table.row(vec!["mlt.experience".into(), "1.0.0".into()]);
        table.row(vec!["a".into(), "10.2.0".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "SUBJECT         LATEST\nmlt.experience  1.0.0\na               10.2.0\n"
        );
    }

    #[test]
    fn given_keys_of_mixed_length_when_written_aligned_then_values_start_in_one_column() {
        let mut out = Vec::new();
        write_aligned(
            &[("name", "S".into()), ("high water", "7".into())],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name:        S\nhigh water:  7\n"
        );
    }

    #[test]
    fn given_each_format_when_one_document_prints_then_it_is_the_human_form_json_or_yaml() {
        let value = json!({"name": "S", "seq": 3, "tags": ["a"]});
        assert_eq!(printed(Format::Table, &value), "human\n");
        let from_json: Value = serde_json::from_str(&printed(Format::Json, &value)).unwrap();
        assert_eq!(from_json, value);
        let yaml = printed(Format::Yaml, &value);
        assert!(!yaml.starts_with("---"), "{yaml}");
        let from_yaml: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(from_yaml, value);
    }

    #[test]
    fn given_each_format_when_items_stream_then_json_is_one_line_and_yaml_opens_each_with_dashes() {
        let value = json!({"seq": 1, "payload": {"a": [1, 2]}});
        assert_eq!(item(Format::Table, &value), "line\n");
        let line = item(Format::Json, &value);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), value);
        let two = format!(
            "{}{}",
            item(Format::Yaml, &value),
            item(Format::Yaml, &value)
        );
        assert!(two.starts_with("---\n"), "{two}");
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&two)
            .map(|doc| Value::deserialize(doc).unwrap())
            .collect();
        assert_eq!(docs, [value.clone(), value]);
    }

    #[test]
    fn given_a_refusal_with_details_and_hint_when_printed_then_each_format_carries_them() {
        let failure = Failure::refused("INVALID_ENVELOPE", "2 rules broken")
            .details(json!({"violations": [
                {"path": "/subject", "message": "empty token"},
                {"path": "", "message": "no payload"},
            ]}))
            .hint("see gme/1");
        let mut text = Vec::new();
        failure.print(Format::Table, &mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "error: INVALID_ENVELOPE: 2 rules broken\n  /subject: empty token\n  \
             (document): no payload\nhint: see gme/1\n"
        );
        let mut json_text = Vec::new();
        failure.print(Format::Json, &mut json_text).unwrap();
        let doc: Value = serde_json::from_slice(&json_text).unwrap();
        assert_eq!(doc["error"]["code"], "INVALID_ENVELOPE");
        assert_eq!(doc["error"]["hint"], "see gme/1");
        assert_eq!(doc["error"]["details"]["violations"][0]["path"], "/subject");
        let mut yaml_text = Vec::new();
        failure.print(Format::Yaml, &mut yaml_text).unwrap();
        let from_yaml: Value = serde_yaml_ng::from_slice(&yaml_text).unwrap();
        assert_eq!(from_yaml, doc);
    }

    #[test]
    fn given_a_usage_error_when_printed_then_no_code_details_or_hint_appear() {
        let failure = Failure::of(&anyhow::anyhow!("reading x.json").context("--payload-file"));
        assert_eq!(failure.exit, 2);
        let mut text = Vec::new();
        failure.print(Format::Table, &mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "error: --payload-file: reading x.json\n"
        );
        let mut json_text = Vec::new();
        failure.print(Format::Json, &mut json_text).unwrap();
        let doc: Value = serde_json::from_slice(&json_text).unwrap();
        assert_eq!(
            doc,
            json!({"error": {"code": "USAGE", "message": "--payload-file: reading x.json"}})
        );
    }

    #[test]
    fn given_a_failure_inside_an_error_chain_when_taken_then_its_code_and_exit_are_kept() {
        let err = anyhow::Error::new(Failure::refused("FORBIDDEN", "a may not b"));
        let failure = Failure::of(&err);
        assert_eq!((failure.code.as_ref(), failure.exit), ("FORBIDDEN", 1));
    }
}
