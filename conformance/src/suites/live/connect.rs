//! `connect` and `legacy_tls` steps: calls with a chosen client certificate (minted when needed) or an old TLS version.

use super::*;

impl CaseRun<'_> {
    pub(super) fn mint(&self, kind: ClientKind) -> Result<Option<ClientIdentity>, LiveStepError> {
        let mint = |source| LiveStepError::Mint { kind: format!("{kind:?}"), source };
        let me = &self.target.me;
        let identity = yrdx_pki::partner_identity(&me.name);
        let issued = match kind {
            ClientKind::Valid => return Ok(Some(me.identity.clone())),
            ClientKind::None => return Ok(None),
            ClientKind::Untrusted => {
                let ca = yrdx_pki::CertificateAuthority::new("yrdx conformance untrusted CA").map_err(mint)?;
                ca.issue_client(&identity, false).map_err(mint)?
            }
            ClientKind::Expired | ClientKind::WrongSan => {
                let (cert, key) = self.target.issuing_ca.as_ref().ok_or(LiveStepError::NoIssuingCa)?;
                let ca = yrdx_pki::CertificateAuthority::from_pem(cert, key)
                    .map_err(|source| LiveStepError::IssuingCa { source })?;
                if kind == ClientKind::Expired {
                    ca.issue_client(&identity, true).map_err(mint)?
                } else {
                    ca.issue_client("urn:yrdx:partner:not-registered", false).map_err(mint)?
                }
            }
        };
        Ok(Some(ClientIdentity { cert_pem: issued.cert_pem, key_pem: issued.key_pem }))
    }

    pub(super) async fn connect(&mut self, kind: ClientKind, expect: &str) -> Result<(), LiveStepError> {
        let identity = self.mint(kind)?;
        let label = format!("{kind:?} client certificate").replace("None ", "no ");
        let (channel, facts) = self.target.channel(identity.as_ref()).await?;
        let mut client = ExchangeClient::new(channel);
        let started = Instant::now();
        // An empty document: a gateway that let the caller in answers INVALID_ARGUMENT.
        let limit = self.target.step_timeout;
        let r = tokio::time::timeout(limit, client.submit(SubmitRequest { document: b"{}".to_vec() })).await;
        // No answer in time is neither a refusal nor an acceptance: it fails both expectations,
        // so a gateway that hangs cannot pass a refusal case.
        let (outcome, view) = match &r {
            Err(_) => ("no answer", json!({"timeout_ms": limit.as_millis() as u64})),
            Ok(Err(st))
                if st.code() == Code::DeadlineExceeded
                    || (st.code() == Code::Cancelled && st.message().contains("Timeout")) =>
            {
                ("no answer", status_view(st))
            }
            Ok(Ok(_)) => ("accepted", json!({"code": "OK"})),
            Ok(Err(st)) if is_refusal(st) => ("refused", status_view(st)),
            Ok(Err(st)) => ("accepted", status_view(st)),
        };
        let tls = facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let attempt = Attempt {
            actor: label.clone(),
            method: "yrdx.v1.Exchange/Submit".into(),
            request: Payload::of(b"{}", None),
            response: Payload::view(view.clone()),
            tls,
            started,
        };
        let assertion = format!("a call with {label} is {expect}");
        self.judge_attempt(attempt, (outcome, expect), assertion, "TLS/authentication", view.to_string());
        Ok(())
    }

    pub(super) async fn legacy(&mut self, version: &str, expect: &str) -> Result<(), LiveStepError> {
        let minor = match version {
            "1.0" => 1,
            "1.1" => 2,
            other => return Err(LiveStepError::LegacyVersion { version: other.to_string() }),
        };
        let started = Instant::now();
        let outcome = crate::tls::probe_legacy_version(&self.target.authority()?, minor, &self.target.server_name)
            .await
            .map_err(|source| LiveStepError::Unreachable { source })?;
        let (got, detail) = match &outcome {
            LegacyOutcome::Refused(d) => ("refused", d.clone()),
            LegacyOutcome::Accepted(d) => ("accepted", d.clone()),
        };
        let attempt = Attempt {
            actor: format!("TLS {version} client"),
            method: format!("TLS handshake offering only TLS {version}"),
            request: Payload::view(json!({"offered_version": version})),
            response: Payload::view(json!({"answer": detail})),
            tls: None,
            started,
        };
        let assertion = format!("a TLS {version} handshake is {expect}");
        self.judge_attempt(attempt, (got, expect), assertion, "TLS handshake", detail);
        Ok(())
    }

    /// Records one connection attempt as evidence and, when it ended otherwise than the case
    /// expects (`(got, expect)`: `accepted`, `refused` …), the finding `assertion` at `what` of
    /// this step, with `detail` of what happened.
    fn judge_attempt(
        &mut self,
        attempt: Attempt,
        (got, expect): (&str, &str),
        assertion: String,
        what: &str,
        detail: String,
    ) {
        self.evidence.push(Evidence {
            step: self.step,
            actor: attempt.actor,
            method: attempt.method,
            status: got.into(),
            request: attempt.request,
            response: attempt.response,
            tls: attempt.tls,
            duration_ms: attempt.started.elapsed().as_millis() as u64,
        });
        if got != expect {
            self.findings.push(Finding::new(
                assertion,
                format!("step {} {what}", self.step),
                expect,
                format!("{got}: {detail}"),
            ));
        }
    }
}

/// One connection attempt of a `connect` or `legacy_tls` step, as its evidence shows it.
struct Attempt {
    /// Who tried (`Valid client certificate`, `TLS 1.0 client`).
    actor: String,
    /// What was tried (the call, or the bare handshake).
    method: String,
    /// What was sent.
    request: Payload,
    /// What came back.
    response: Payload,
    /// The TLS session, when there was one to show.
    tls: Option<TlsFacts>,
    /// When the attempt began.
    started: Instant,
}
