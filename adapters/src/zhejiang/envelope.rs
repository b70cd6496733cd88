//! The Zhejiang envelope reader: `/Exchange/Header` (message id, kind, sender, receiver, send
//! time), each child once and in any order, then the envelope checks every format shares
//! (`crate::envelope`) at Zhejiang's own paths (`docs/partners/zhejiang.md`, Header).

use super::*;

pub(super) type Kind = Option<(RecordKind, &'static str)>;

pub(super) fn decode_header<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    cx: &mut Ctx,
) -> Result<(Envelope, Kind), DecodeError> {
    let at = At::Fixed("/Exchange/Header");
    attributes(&start, &at, [], cx)?;
    let mut envelope = Envelope::default();
    let mut kind_text = String::new();
    read_children(
        stream,
        &start,
        &at,
        &["MessageId", "Kind", "Sender", "Receiver", "SentAt"],
        cx,
        |s, name, child, at, cx| {
            let text = leaf(s, child, at, cx)?;
            match name {
                "MessageId" => envelope.message_id = text,
                "Kind" => kind_text = text,
                "Sender" => envelope.sender = text,
                "Receiver" => envelope.receiver = text,
                _ => envelope.sent_at = time(&text, at, cx),
            }
            Ok(())
        },
    )?;
    let kind = KINDS.iter().find(|(n, _)| *n == kind_text).map(|(n, k)| (*k, *n));
    if kind.is_none() {
        cx.error(
            "/Exchange/Header/Kind",
            format!("'{kind_text}' is not a Kind (Plan, Sampling, Inspection, CaseTransfer, CaseFeedback, RiskAlert)"),
        );
    }
    let paths = EnvelopePaths {
        message_id: "/Exchange/Header/MessageId",
        sender: "/Exchange/Header/Sender",
        receiver: "/Exchange/Header/Receiver",
        sent_at: "/Exchange/Header/SentAt",
        sent_at_form: "xs:dateTime with an offset",
    };
    crate::envelope::check(&envelope, &paths, cx);
    Ok((envelope, kind))
}
