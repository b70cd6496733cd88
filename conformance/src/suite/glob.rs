//! Case-id globs (`gateway.submit.*`) for `--run` and `--skip`.

/// Whether `id` matches a glob of `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, id: &str) -> bool {
    fn rec(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| rec(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && rec(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && rec(rest, &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = id.chars().collect();
    rec(&p, &s)
}
