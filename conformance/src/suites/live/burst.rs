//! `burst` steps: many submissions at once against the rate limit.

use super::*;

impl CaseRun<'_> {
    pub(super) async fn burst(&mut self, s: &crate::suite::BurstStep) -> Result<(), LiveStepError> {
        let count = self.target.burst.unwrap_or(s.count);
        let (client, facts) = self.client(s.by).await?;
        let body = self.fill.fill(&s.raw).into_bytes();
        let started = Instant::now();
        // Concurrent, so the burst outruns any sane per-partner rate.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..count {
            let mut c = client.clone();
            let b = body.clone();
            tasks.spawn(async move { c.submit(SubmitRequest { document: b }).await });
        }
        let mut by_status: BTreeMap<String, u32> = BTreeMap::new();
        let mut sample: Option<tonic::Status> = None;
        while let Some(r) = tasks.join_next().await {
            let status = match r {
                Ok(Ok(_)) => "OK".to_string(),
                Ok(Err(st)) => {
                    let name = code_name(st.code()).to_string();
                    if name == s.expect_status && sample.is_none() {
                        sample = Some(st);
                    }
                    name
                }
                Err(e) => format!("task failed: {e}"),
            };
            *by_status.entry(status).or_default() += 1;
        }
        let view =
            json!({"submissions": count, "answers_by_status": by_status, "example": sample.as_ref().map(status_view)});
        self.record_evidence(
            s.by,
            &format!("yrdx.v1.Exchange/Submit ×{count}"),
            &s.expect_status,
            Payload::of(&body, None),
            Payload::view(view),
            &facts,
            started.elapsed().as_millis() as u64,
        );
        let at = format!("step {} burst", self.step);
        match &sample {
            None => self.findings.push(Finding::new(
                format!("a burst of {count} submissions is limited"),
                at,
                format!("at least one {}", s.expect_status),
                format!("{by_status:?}"),
            )),
            Some(st) => {
                if let Some(key) = &s.expect_metadata {
                    match st.metadata().get(key.as_str()).and_then(|v| v.to_str().ok()) {
                        None => self.findings.push(Finding::new(
                            "the refusal says when to retry",
                            format!("{at}: {key}"),
                            "present",
                            "absent",
                        )),
                        Some(v) => {
                            // Let the limit recover, so later cases are not throttled by this one.
                            let secs: u64 = v.trim().parse().unwrap_or(1);
                            tokio::time::sleep(Duration::from_secs(secs.clamp(1, 5) + 1)).await;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
