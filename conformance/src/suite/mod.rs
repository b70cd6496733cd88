//! Declarative test cases: the TOML files of `conformance/suites/<suite>/<group>.toml`.
//!
//! Each file is one group of one suite and holds its cases; a case names the clauses it checks,
//! its input records (a vector with canonical-field overrides, or inline canonical JSON) and its
//! steps. Placeholders in any string — `${RUN}`, `${REGION}`, `${PEER_REGION}`, `${PARTNER}`,
//! `${EPOCH}`, `${TODAY}`, `${NOW}` — are filled in at run time so a suite can run again and again against
//! the same target. `conformance/suites/README.md` documents every key.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The suites this tool knows how to run.
pub const SUITES: [&str; 6] = ["formats", "gateway", "tls", "samr-intake", "samr-push", "partner-endpoint"];

mod diff;
mod glob;
mod json_path;
mod loader;
mod placeholders;
mod schema;

pub use diff::json_differences;
pub use glob::glob_match;
pub use json_path::{remove_path, set_path, JsonPathError};
pub use loader::{canonical_of, carries_batches, default_dir, load, CaseDefError, SuiteError};
pub use placeholders::Placeholders;
pub use schema::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_case_ids() {
        assert!(glob_match("gateway.*", "gateway.submit.plan"));
        assert!(glob_match("*.negative.*", "gateway.negative.forged-sender"));
        assert!(glob_match("tls.legacy-1.?", "tls.legacy-1.1"));
        assert!(!glob_match("gateway.submit", "gateway.submit.plan"));
        assert!(!glob_match("tls.*", "gateway.submit.plan"));
    }

    #[test]
    fn paths_are_set_and_removed() {
        let mut v = json!({"a": {"b": 1}, "list": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]});
        set_path(&mut v, "a.c.d", json!("new")).unwrap();
        set_path(&mut v, "list.1.x", json!(9)).unwrap();
        assert!(set_path(&mut v, "list.5.x", json!(0)).is_err());
        assert_eq!(v["a"]["c"]["d"], "new");
        assert_eq!(v["list"][1]["x"], 9);
        remove_path(&mut v, "list.*.y");
        assert_eq!(v["list"], json!([{"x": 1}, {"x": 9}]));
    }

    #[test]
    fn differences_name_the_leaf() {
        let d = json_differences(&json!({"s": {"name": "A", "n": 1}}), &json!({"s": {"name": "B", "n": 1}}));
        assert_eq!(d, vec![("s.name".to_string(), "A".to_string(), "B".to_string())]);
    }

    #[test]
    fn placeholders_fill_strings_anywhere() {
        let p = Placeholders::new(&[("RUN", "AB12".into()), ("REGION", "320000".into())]);
        assert_eq!(p.fill("S-${RUN}-${REGION}"), "S-AB12-320000");
        assert_eq!(p.fill_json(&json!({"a": ["${RUN}"]})), json!({"a": ["AB12"]}));
    }
}
