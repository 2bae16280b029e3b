//! `sub`: messages over the WebSocket — a live subscription to a pattern (optionally in a queue
//! group) or the push deliveries of a durable consumer, acknowledged once printed with `--ack`.
//! Prints one line per message (one JSON object per line with `-o json`, one `---` YAML
//! document with `-o yaml`) and exits 0 after
//! `--count` messages, or after `--timeout` without one.

use std::io::Write;

use ace_client::WsMessage as Message;
use anyhow::Result;

use super::Outcome;
use super::client::{Session, failed};
use crate::args::{ServerArgs, SubArgs};
use crate::output::Format;

pub(crate) fn run(
    args: &SubArgs,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let session = Session::new(server)?;
    session.block_on(receive(&session, args, format, out))
}

async fn receive(
    session: &Session,
    args: &SubArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let connection = match session.client.connect_ws().await {
        Ok(connection) => connection,
        Err(err) => return failed(err),
    };
    let subscribed = match (&args.pattern, &args.stream, &args.consumer) {
        (Some(pattern), _, _) => connection.subscribe(pattern, args.queue.as_deref()).await,
        (None, Some(stream), Some(consumer)) => connection.consume(stream, consumer).await,
        _ => anyhow::bail!("give a PATTERN, or --stream and --consumer"),
    };
    let mut subscription = match subscribed {
        Ok(subscription) => subscription,
        Err(err) => return failed(err),
    };
    let mut received = 0;
    while args.count.is_none_or(|count| received < count) {
        let next = match args.timeout {
            Some(limit) => match tokio::time::timeout(limit, subscription.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => subscription.next().await,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(err)) => return failed(err),
            None => break,
        };
        print(&message, format, out)?;
        out.flush()?;
        if let (true, Some(seq)) = (args.ack, message.seq)
            && let Err(err) = subscription.ack(seq).await
        {
            return failed(err);
        }
        received += 1;
    }
    Ok(Outcome::Success)
}

/// `subject NAME payload`, with `[seq … delivery …]` first for a consumer delivery; one
/// document per message for scripts.
fn print(message: &Message, format: Format, out: &mut dyn Write) -> Result<()> {
    format.print_item(out, message, |out| {
        if let (Some(seq), Some(delivery)) = (message.seq, message.delivery) {
            write!(out, "[seq {seq} delivery {delivery}] ")?;
        }
        writeln!(out, "{}", super::consumer::describe(&message.envelope))?;
        Ok(())
    })
}
