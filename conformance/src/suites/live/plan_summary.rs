//! `plan_summary` steps: a plan's summary asked of the Records API and its rows compared.

use super::*;

impl CaseRun<'_> {
    pub(super) async fn plan_summary(&mut self, s: &PlanSummaryStep) -> Result<(), LiveStepError> {
        let plan_id = match (&s.plan, &s.plan_id) {
            (Some(name), _) => match self.records.get(name) {
                Some(Record::Plan(p)) => p.plan_id.clone(),
                _ => return Err(LiveStepError::NotAPlan { name: name.clone() }),
            },
            (None, Some(id)) => self.fill.fill(id),
            (None, None) => return Err(LiveStepError::NoPlan),
        };
        let identity = self.profile(s.by)?.identity.clone();
        let (channel, facts) = self.target.channel(Some(&identity)).await?;
        let started = Instant::now();
        let answer =
            RecordsClient::new(channel).get_plan_summary(PlanSummaryRequest { plan_id: plan_id.clone() }).await;
        let (status, view) = match &answer {
            Ok(r) => ("OK".to_string(), serde_json::to_value(r.get_ref()).unwrap_or(Value::Null)),
            Err(st) => (code_name(st.code()).to_string(), status_view(st)),
        };
        self.record_evidence(
            s.by,
            "yrdx.v1.Records/GetPlanSummary",
            &status,
            Payload::view(json!({ "plan_id": plan_id })),
            Payload::view(view.clone()),
            &facts,
            started.elapsed().as_millis() as u64,
        );
        let at = format!("step {} GetPlanSummary {plan_id}", self.step);
        let want_status = s.expect.status.clone().unwrap_or_else(|| "OK".into());
        if status != want_status {
            let message = answer.as_ref().err().map(|st| format!(": {}", st.message())).unwrap_or_default();
            self.findings.push(Finding::new(
                "the summary is answered as expected",
                at,
                want_status,
                format!("{status}{message}"),
            ));
            return Ok(());
        }
        let rows = view.get("rows").and_then(Value::as_array).cloned().unwrap_or_default();
        for want in &s.expect.rows {
            let want: serde_json::Map<String, Value> =
                want.iter().map(|(k, v)| (k.clone(), self.fill.fill_json(v))).collect();
            let key = (want.get("region"), want.get("category"));
            let Some(got) = rows.iter().find(|r| (r.get("region"), r.get("category")) == key) else {
                self.findings.push(Finding::new(
                    "the summary has a row per region and category of the plan",
                    at.clone(),
                    Value::Object(want.clone()).to_string(),
                    format!("rows: {}", Value::Array(rows.clone())),
                ));
                continue;
            };
            // Only the fields the case names; proto3 JSON leaves zero counts out.
            let got: serde_json::Map<String, Value> =
                want.keys().map(|k| (k.clone(), got.get(k).cloned().unwrap_or(json!(0)))).collect();
            for (path, e, a) in crate::suite::json_differences(&Value::Object(want), &Value::Object(got)) {
                self.findings.push(Finding::new(
                    "the summary counts what the gateway holds",
                    format!("{at} {path}"),
                    e,
                    a,
                ));
            }
        }
        Ok(())
    }
}
