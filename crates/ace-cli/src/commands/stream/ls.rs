//! `stream ls`: one row per stream.

use std::io::Write;

use ace_envelope::api::http::StreamInfo;
use anyhow::Result;

use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::{Format, Table};

pub(super) fn run(session: &Session, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let streams = match session.block_on(session.client.list_streams()) {
        Ok(streams) => streams,
        Err(err) => return failed(err),
    };
    format.print(out, &streams, |out| table(&streams, out))?;
    Ok(Outcome::Success)
}

fn table(streams: &[StreamInfo], out: &mut dyn Write) -> Result<()> {
    let mut table = Table::new(&[
        "NAME",
        "SUBJECTS",
        "RETENTION",
        "MESSAGES",
        "BYTES",
        "LAST SEQ",
        "CONSUMERS",
    ]);
    for info in streams {
        table.row(vec![
            info.config.name.clone(),
            subjects(&info.config.subjects),
            super::info::word(&info.config.retention),
            info.messages.to_string(),
            info.bytes.to_string(),
            info.last_seq.to_string(),
            info.consumers.to_string(),
        ]);
    }
    table.write(out)
}

/// Up to two patterns, then how many more: the default streams capture a dozen, which would
/// push every other column off the screen (`stream info` and `-o json` show them all).
fn subjects(patterns: &[String]) -> String {
    match patterns {
        [] | [_] | [_, _] => patterns.join(","),
        [first, second, rest @ ..] => format!("{first},{second} (+{} more)", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_many_subject_patterns_when_listed_then_two_show_and_the_rest_are_counted() {
        let patterns: Vec<String> = ["a.>", "b.>", "c.>", "d.>"].map(String::from).to_vec();
        assert_eq!(subjects(&patterns[..2]), "a.>,b.>");
        assert_eq!(subjects(&patterns), "a.>,b.> (+2 more)");
    }
}
