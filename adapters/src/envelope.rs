//! The envelope checks every partner's decoder shares: the message id's pattern, sender and
//! receiver as region codes (or `SAMR`), and a sending time — each problem named by the
//! partner's own path for that field.

use crate::problems::Ctx;
use yrdx_proto::identifiers;
use yrdx_proto::v1::Envelope;

/// Where a format keeps each envelope field, and how it writes the sending time (for the
/// message when it is missing or unreadable).
pub(crate) struct EnvelopePaths<'p> {
    /// The message id's path (`HEAD.XXBH`, `messageId`, `/Exchange/Header/MessageId`).
    pub message_id: &'p str,
    /// The sender's path.
    pub sender: &'p str,
    /// The receiver's path.
    pub receiver: &'p str,
    /// The sending time's path.
    pub sent_at: &'p str,
    /// The sending time's form, as the interface document gives it.
    pub sent_at_form: &'p str,
}

/// Reports every problem of a decoded envelope at the format's own paths.
pub(crate) fn check(envelope: &Envelope, paths: &EnvelopePaths<'_>, cx: &mut Ctx) {
    if !identifiers::IdPattern::Message.matches(&envelope.message_id) {
        cx.error(paths.message_id, format!("'{}' is not a message id (1–64 of [A-Za-z0-9_-])", envelope.message_id));
    }
    for (path, v) in [(paths.sender, &envelope.sender), (paths.receiver, &envelope.receiver)] {
        if !identifiers::is_region(v) && !identifiers::is_samr(v) {
            cx.error(path, format!("'{v}' is not a region code or SAMR"));
        }
    }
    if envelope.sent_at.is_none() {
        cx.error(paths.sent_at, format!("required ({})", paths.sent_at_form));
    }
}
