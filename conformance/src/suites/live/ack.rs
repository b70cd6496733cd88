//! `ack` steps: acknowledging a saved delivery and checking the count.

use super::*;

impl CaseRun<'_> {
    pub(super) async fn ack(&mut self, by: Actor, delivery: &str, expect: u32) -> Result<(), LiveStepError> {
        let id =
            self.saved.get(delivery).cloned().ok_or_else(|| LiveStepError::NotSaved { name: delivery.to_string() })?;
        let at = format!("Ack {delivery}");
        self.ack_one(by, &id, expect, "Ack acknowledges only the caller's own deliveries", &at).await
    }

    /// Acknowledges one delivery and asserts how many the target acknowledged (an error answer
    /// counts as none acknowledged).
    pub(super) async fn ack_one(
        &mut self,
        by: Actor,
        id: &str,
        expect: u32,
        assertion: &str,
        at: &str,
    ) -> Result<(), LiveStepError> {
        let (mut client, facts) = self.client(by).await?;
        let started = Instant::now();
        let r = client.ack(AckRequest { delivery_ids: vec![id.to_string()] }).await;
        let (status, view, n) = match &r {
            Ok(a) => ("OK".to_string(), json!({"acknowledged": a.get_ref().acknowledged}), a.get_ref().acknowledged),
            Err(st) => (code_name(st.code()).to_string(), status_view(st), 0),
        };
        self.record_evidence(
            by,
            "yrdx.v1.Exchange/Ack",
            &status,
            Payload::view(json!({"delivery_ids": [id]})),
            Payload::view(view),
            &facts,
            started.elapsed().as_millis() as u64,
        );
        if n != expect {
            let answer = match &r {
                Ok(_) => format!("{n} acknowledged"),
                Err(st) => format!("{n} acknowledged ({status}: {})", st.message()),
            };
            self.findings.push(Finding::new(
                assertion,
                format!("step {} {at}", self.step),
                format!("{expect} acknowledged"),
                answer,
            ));
        }
        Ok(())
    }
}
