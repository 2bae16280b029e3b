//! Step 5 of the pipeline: messages held for a human's approval.
//!
//! NOTE(governance, in progress): the approvals store, the approval-requested event, deciding and
//! expiring approvals land with issue 5; until then a held message is refused.

use ace_envelope::Envelope;

use crate::context::Principal;
use crate::core::Core;
use crate::error::CoreError;

impl Core {
    /// Holds `envelope` for approval and answers the error the publisher gets.
    pub(crate) async fn hold(
        &self,
        principal: &Principal,
        envelope: Envelope,
        reasons: Vec<String>,
    ) -> CoreError {
        CoreError::Forbidden {
            principal: principal.id.clone(),
            action: format!("publish on `{}`", envelope.subject),
            reasons,
        }
    }
}
