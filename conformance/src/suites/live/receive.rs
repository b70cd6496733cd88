//! `receive` steps: waiting for a delivery holding the expected records and comparing it field by field (or asserting its absence).

use super::*;

/// Deliveries a `receive` step lets the gateway hand it unacknowledged: the most the gateway
/// allows, so that up to 999 unrelated deliveries waiting in the partner's mailbox do not hide
/// the one the case waits for.
const RECEIVE_WINDOW: u32 = 1000;

impl CaseRun<'_> {
    pub(super) async fn receive(&mut self, s: &ReceiveStep) -> Result<(), LiveStepError> {
        // The whole window the gateway allows (it caps max_unacked at 1000): the partner's
        // mailbox may hold other traffic, which the run must see past, never acknowledge.
        let format = self.profile(s.by)?.format;
        let wanted: Vec<(RecordKind, String)> =
            s.records.iter().filter_map(|n| self.records.get(n)).map(|r| (r.kind(), r.id())).collect();
        let (mut client, facts) = self.client(s.by).await?;
        let started = Instant::now();
        let at = format!("step {} Receive", self.step);
        let opened = tokio::time::timeout(
            self.target.step_timeout,
            client.receive(ReceiveRequest { max_unacked: RECEIVE_WINDOW }),
        )
        .await;
        let Ok(stream) = opened else {
            self.findings.push(Finding::new(
                "Receive opens the mailbox",
                at,
                "a delivery stream",
                format!("no answer within {} ms", self.target.step_timeout.as_millis()),
            ));
            return Ok(());
        };
        let mut stream = match stream {
            Ok(r) => r.into_inner(),
            Err(st) => {
                let status = code_name(st.code()).to_string();
                self.record_evidence(
                    s.by,
                    "yrdx.v1.Exchange/Receive",
                    &status,
                    Payload::default(),
                    Payload::view(status_view(&st)),
                    &facts,
                    0,
                );
                self.findings.push(Finding::new(
                    "Receive opens the mailbox",
                    at,
                    "OK",
                    format!("{status}: {}", st.message()),
                ));
                return Ok(());
            }
        };
        let deadline = started + Duration::from_millis(s.within_ms);
        let mut found = None;
        let mut seen = 0usize;
        while found.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, stream.message()).await {
                Err(_) | Ok(Ok(None)) => break,
                Ok(Err(st)) => {
                    self.findings.push(Finding::new(
                        "the delivery stream stays open",
                        at.clone(),
                        "deliveries",
                        format!("{}: {}", code_name(st.code()), st.message()),
                    ));
                    return Ok(());
                }
                Ok(Ok(Some(d))) => {
                    seen += 1;
                    let Ok(doc) = format.decode(&d.document, &DecodeLimits::default()) else {
                        // Another delivery this case does not judge; an awaited one that does not
                        // decode is reported below as never arriving.
                        continue;
                    };
                    let ids: Vec<(RecordKind, String)> = doc.records.iter().map(|r| (r.kind(), r.id())).collect();
                    if ids == wanted {
                        found = Some((d, doc));
                    }
                }
            }
        }
        drop(stream);
        let duration_ms = started.elapsed().as_millis() as u64;
        let want_text: Vec<String> = wanted.iter().map(|(k, id)| format!("{k} {id}")).collect();
        match (found, s.absent) {
            (None, true) => {
                self.receive_evidence(
                    s.by,
                    Payload::view(json!({"deliveries_seen": seen, "matching": 0})),
                    &facts,
                    duration_ms,
                );
            }
            (Some((d, _)), true) => {
                self.receive_evidence(s.by, Payload::of(&d.document, None), &facts, duration_ms);
                self.findings.push(Finding::new(
                    "no such delivery reaches this mailbox",
                    at,
                    format!("no delivery of {}", want_text.join(", ")),
                    format!("delivery {} ({})", d.delivery_id, d.message_id),
                ));
            }
            (None, false) => {
                self.receive_evidence(
                    s.by,
                    Payload::view(json!({"deliveries_seen": seen, "matching": 0})),
                    &facts,
                    duration_ms,
                );
                self.findings.push(Finding::new(
                    format!("a delivery arrives within {} ms", s.within_ms),
                    at,
                    want_text.join(", "),
                    format!("{seen} other deliveries, none with these records"),
                ));
            }
            (Some((d, doc)), false) => {
                let got_view = canonical::encode(&doc.envelope, &doc.records)
                    .ok()
                    .and_then(|c| serde_json::from_slice::<Value>(&c.bytes).ok());
                self.receive_evidence(s.by, Payload::of(&d.document, got_view), &facts, duration_ms);
                let expected = self.expected_as_carried(s.from, format, &s.records, &doc.envelope)?;
                let ignore: Vec<String> = s.ignore.iter().map(|p| self.fill.fill(p)).collect();
                for (i, (want, got)) in
                    expected.iter().zip(doc.records.iter().map(canonical::record_to_value)).enumerate()
                {
                    let (mut want, mut got) = (want.clone(), got);
                    for p in &ignore {
                        crate::suite::remove_path(&mut want, p);
                        crate::suite::remove_path(&mut got, p);
                    }
                    for (p, value) in &s.expect_set {
                        crate::suite::set_path(&mut want, p, self.fill.fill_json(value))
                            .map_err(|source| LiveStepError::ExpectSet { path: p.clone(), source })?;
                    }
                    for (path, e, a) in crate::suite::json_differences(&want, &got) {
                        self.findings.push(Finding::new(
                            format!("the delivered {} carries the submitted values", wanted[i].0),
                            format!("records.{i}.{path}"),
                            e,
                            a,
                        ));
                    }
                }
                if let Some(name) = &s.save {
                    self.saved.insert(name.clone(), d.delivery_id.clone());
                }
                if s.ack {
                    self.ack_one(s.by, &d.delivery_id, 1, "Ack confirms the delivery", "Ack").await?;
                }
            }
        }
        Ok(())
    }

    /// Keeps the evidence of a Receive call: the window asked for and what came back.
    fn receive_evidence(&mut self, by: Actor, answer: Payload, facts: &Arc<Mutex<Option<TlsFacts>>>, duration_ms: u64) {
        let asked = Payload::view(json!({"max_unacked": RECEIVE_WINDOW}));
        self.record_evidence(by, "yrdx.v1.Exchange/Receive", "OK", asked, answer, facts, duration_ms);
    }
}
