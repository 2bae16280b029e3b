//! `req`: a query envelope sent over the WebSocket with a fresh reply inbox; prints the reply
//! (its subject, name and payload for people, the whole envelope with `-o json|yaml`).

use std::io::Write;

use ace_envelope::{Envelope, Kind};
use anyhow::Result;

use super::Outcome;
use super::client::{Session, failed, payload};
use crate::args::{ReqArgs, ServerArgs};
use crate::output::Format;

pub(crate) fn run(
    args: &ReqArgs,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let payload = payload(Some(&args.payload), args.raw)?;
    let query = match Envelope::builder(Kind::Query, args.subject.clone())
        .payload_json(payload)
        .build()
    {
        Ok(query) => query,
        Err(err) => return super::publish::refused_locally(&err),
    };
    let session = Session::new(server)?;
    let reply = session.block_on(async {
        let connection = session.client.connect_ws().await?;
        connection.request(query, args.timeout).await
    });
    let reply = match reply {
        Ok(reply) => reply,
        Err(err) => return failed(err),
    };
    format.print(out, &reply, |out| {
        Ok(writeln!(out, "{}", super::consumer::describe(&reply))?)
    })?;
    Ok(Outcome::Success)
}
