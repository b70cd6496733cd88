//! `submit` steps: a document built from the case's records (or raw, oversized, repeated) sent with Exchange.Submit, and its reply judged.

use super::*;

impl CaseRun<'_> {
    pub(super) fn document(&self, by: Actor, s: &SubmitStep, message_id: &str) -> Result<Vec<u8>, LiveStepError> {
        let p = self.profile(by)?;
        if let Some(raw) = &s.raw {
            return Ok(self.fill.fill(raw).replace("${MESSAGE_ID}", message_id).into_bytes());
        }
        if let Some(n) = s.oversized {
            let n = self.target.oversized_bytes.unwrap_or(n);
            let mut doc = br#"{"pad":""#.to_vec();
            doc.resize(n.saturating_sub(2).max(doc.len()), b'x');
            doc.extend_from_slice(b"\"}");
            return Ok(doc);
        }
        let records: Vec<Record> = s.records.iter().filter_map(|n| self.records.get(n).cloned()).collect();
        let envelope = Envelope {
            message_id: message_id.to_string(),
            sender: s.sender.as_ref().map(|x| self.fill.fill(x)).unwrap_or_else(|| p.region.clone()),
            receiver: "310000".into(),
            sent_at: Some(crate::clock::now()),
        };
        let encoded = p
            .format
            .encode(&envelope, &records, 1)
            .map_err(|source| LiveStepError::Encode { partner: p.name.clone(), source })?;
        let mut text = String::from_utf8(encoded.bytes).map_err(|source| LiveStepError::NotText { source })?;
        for (from, to) in &s.replace {
            let from = self.fill.fill(from);
            if !text.contains(&from) {
                return Err(LiveStepError::ReplaceMissing { from });
            }
            text = text.replace(&from, &self.fill.fill(to));
        }
        Ok(text.into_bytes())
    }

    pub(super) async fn submit(&mut self, s: &SubmitStep) -> Result<(), LiveStepError> {
        let (bytes, message_id) = if s.repeat {
            let (_, b, m) = self.last.clone().ok_or(LiveStepError::NoEarlierSubmit { key: "repeat" })?;
            (b, m)
        } else {
            let m = if s.reuse_message_id {
                self.last
                    .as_ref()
                    .map(|l| l.2.clone())
                    .ok_or(LiveStepError::NoEarlierSubmit { key: "reuse_message_id" })?
            } else {
                self.fresh_message_id()
            };
            (self.document(s.by, s, &m)?, m)
        };
        let format = self.profile(s.by)?.format;
        let (mut client, facts) = self.client(s.by).await?;
        let started = Instant::now();
        let result = client.submit(SubmitRequest { document: bytes.clone() }).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let decoded = format
            .decode(&bytes, &DecodeLimits { max_bytes: usize::MAX, ..DecodeLimits::default() })
            .ok()
            .and_then(|d| canonical::encode(&d.envelope, &d.records).ok())
            .and_then(|c| serde_json::from_slice(&c.bytes).ok());
        let (status, response) = match &result {
            Ok(r) => ("OK".to_string(), serde_json::to_value(r.get_ref()).unwrap_or(Value::Null)),
            Err(st) => (code_name(st.code()).to_string(), status_view(st)),
        };
        self.record_evidence(
            s.by,
            "yrdx.v1.Exchange/Submit",
            &status,
            Payload::of(&bytes, decoded),
            Payload::view(response),
            &facts,
            duration_ms,
        );
        self.last = Some((s.by, bytes, message_id));
        let want = self.fill.fill(&s.expect.status);
        let at = format!("step {} Submit", self.step);
        if status != want {
            let detail = match &result {
                Err(st) => format!("{status}: {}", st.message()),
                Ok(_) => status.clone(),
            };
            self.findings.push(Finding::new("Submit answers the expected status", at, want, detail));
            return Ok(());
        }
        match &result {
            Ok(reply) => {
                let reply = reply.get_ref();
                if let Some(d) = s.expect.duplicate {
                    if reply.duplicate != d {
                        self.findings.push(Finding::new(
                            "the reply's duplicate flag",
                            format!("{at}: duplicate"),
                            d.to_string(),
                            reply.duplicate.to_string(),
                        ));
                    }
                }
                if let Some(words) = &s.expect.warning_contains {
                    let words = self.fill.fill(words);
                    if !reply.warnings.iter().any(|w| w.contains(&words)) {
                        self.findings.push(Finding::new(
                            "the reply warns",
                            format!("{at}: warnings"),
                            format!("a warning containing {words:?}"),
                            if reply.warnings.is_empty() { "(no warnings)".into() } else { reply.warnings.join(" | ") },
                        ));
                    }
                }
                if !s.expect.records.is_empty() {
                    let want: Vec<String> = s.expect.records.iter().map(|r| self.fill.fill(r)).collect();
                    let got: Vec<String> = reply.records.iter().map(|r| format!("{} {}", r.kind, r.id)).collect();
                    if want != got {
                        self.findings.push(Finding::new(
                            "the reply lists the records accepted, in document order",
                            format!("{at}: records"),
                            want.join(", "),
                            got.join(", "),
                        ));
                    }
                }
            }
            Err(st) => {
                if let Some(words) = &s.expect.message_contains {
                    let words = self.fill.fill(words);
                    if !st.message().contains(&words) {
                        self.findings.push(Finding::new(
                            "the status message says why",
                            format!("{at}: message"),
                            format!("contains {words:?}"),
                            st.message().to_string(),
                        ));
                    }
                }
                if let Some(paths) = s.expect.paths.get(&format.to_string()) {
                    let named: Vec<String> = st
                        .get_details_bad_request()
                        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                        .unwrap_or_default();
                    for p in paths {
                        if !named.contains(p) {
                            self.findings.push(Finding::new(
                                "the error details name the field by the sender's own path",
                                p.clone(),
                                "a field violation for this path",
                                if named.is_empty() { "(no BadRequest details)".into() } else { named.join(", ") },
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
