//! Room membership through IAP: who, signed in with an email and groups, is a participant.
//!
//! Owns the evaluation of `rooms[].participants` rules: exact emails, email domains and
//! provider groups, first match wins and gives the rule's api scope. Emails are parsed
//! strictly (exactly one `@`, lowercased) and domains compare whole, never by suffix, so
//! `alice@evilacme.test` is not in `acme.test`. Pure: the caller passes the current
//! config's rules on every request.

use serde_json::Value;

use crate::canonical::normalize_email;
use crate::config::ParticipantRule;

/// The api scope of the first rule that admits this user, or `None` when none does. The
/// rules are as loaded: their emails and domains already normalised (config validation),
/// so a request normalises only its own email.
pub fn participant_scope(
    rules: &[ParticipantRule],
    email: &str,
    groups: &[String],
) -> Option<Value> {
    let email = normalize_email(email)?;
    // Well-formed, so it has exactly one `@`.
    let domain = email.rsplit_once('@')?.1;
    rules
        .iter()
        .find(|rule| {
            rule.emails.contains(&email)
                || rule.email_domains.iter().any(|d| d == domain)
                || rule
                    .groups
                    .iter()
                    .any(|g| groups.iter().any(|have| have == g))
        })
        .map(|rule| {
            rule.api
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Rules as config load leaves them.
    fn rules() -> Vec<ParticipantRule> {
        let mut rules = raw_rules();
        rules.iter_mut().for_each(ParticipantRule::normalize);
        rules
    }

    fn raw_rules() -> Vec<ParticipantRule> {
        vec![
            ParticipantRule {
                emails: vec!["Alice@Acme.test".into()],
                api: Some(json!({"queues": {}})),
                ..Default::default()
            },
            ParticipantRule {
                email_domains: vec!["acme.test".into()],
                ..Default::default()
            },
            ParticipantRule {
                groups: vec!["ops".into()],
                api: Some(json!({"admin": true})),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn an_exact_email_matches_case_insensitively_and_gives_its_api() {
        assert_eq!(
            participant_scope(&rules(), "ALICE@acme.TEST", &[]),
            Some(json!({"queues": {}}))
        );
    }

    /// Security: only ASCII letters fold. Unicode lowercasing would turn the Kelvin sign
    /// (U+212A) into `k`, letting a look-alike account pass as a named email.
    #[test]
    fn look_alike_letters_do_not_fold_into_a_named_email() {
        let kate = [ParticipantRule {
            emails: vec!["kate@other.test".into()],
            api: Some(json!({"admin": true})),
            ..Default::default()
        }];
        let kate = kate.map(|mut r| {
            r.normalize();
            r
        });
        assert_eq!(
            participant_scope(&kate, "KATE@other.test", &[]),
            Some(json!({"admin": true}))
        );
        for email in ["\u{212A}ate@other.test", "\u{212A}ATE@other.test"] {
            assert_eq!(participant_scope(&kate, email, &[]), None, "{email}");
            assert_eq!(
                normalize_email(email).as_deref(),
                Some(email.to_ascii_lowercase().as_str())
            );
        }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        // alice is also in the domain rule and the ops group; the first rule decides.
        assert_eq!(
            participant_scope(&rules(), "alice@acme.test", &["ops".into()]),
            Some(json!({"queues": {}}))
        );
    }

    #[test]
    fn a_domain_rule_without_api_gives_an_empty_scope() {
        assert_eq!(
            participant_scope(&rules(), "bob@acme.test", &[]),
            Some(json!({}))
        );
    }

    #[test]
    fn domain_suffix_and_prefix_tricks_are_not_members() {
        for email in [
            "alice@evilacme.test",
            "alice@acme.test.evil",
            "alice@sub.acme.test",
            "alice@acme.test@evil.test",
            "evil.test@acme.test@x",
            "alice@acme.test.",
            "@acme.test",
            "alice@@acme.test",
            "alice acme.test",
            "ali ce@acme.test",
        ] {
            assert_eq!(participant_scope(&rules(), email, &[]), None, "{email}");
        }
    }

    #[test]
    fn a_group_from_the_provider_admits() {
        assert_eq!(
            participant_scope(&rules(), "carol@other.test", &["ops".into()]),
            Some(json!({"admin": true}))
        );
        assert_eq!(
            participant_scope(&rules(), "carol@other.test", &["Ops".into()]),
            None
        );
    }

    #[test]
    fn no_rules_admit_nobody() {
        assert_eq!(participant_scope(&[], "alice@acme.test", &[]), None);
    }
}
