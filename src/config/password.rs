//! The argon2id password hashes of the static sign-in provider: which ones a login can
//! afford to check.
//!
//! Owns the cost limits. A hash names its own memory, iterations and lanes, and a login
//! computes it for whoever posts the form, so a hash over these limits is refused where it
//! is written (at load, and again before any check) rather than when an unauthenticated
//! request makes roomgate allocate what the hash asks for. Messages name the limit and
//! the parameter, never the hash.

use argon2::password_hash::PasswordHash;

/// The most memory (KiB) a hash may ask for: 64 MiB, the argon2-cffi default and RFC 9106's
/// second recommended setting. Logins run at most one per CPU, so at most this much per CPU.
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;
/// The most passes over that memory.
pub const MAX_ITERATIONS: u32 = 10;
/// The most lanes.
pub const MAX_PARALLELISM: u32 = 8;

/// `Ok` for an argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) whose costs
/// are within the limits; otherwise what is wrong, without quoting the hash.
pub fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash)
        .map_err(|_| "must be an argon2id hash in PHC form ($argon2id$v=19$m=…,t=…,p=…$…)")?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err("must be an argon2id hash (not argon2i or argon2d)".into());
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("the argon2id hash has no salt or no hash part".into());
    }
    let params = argon2::Params::try_from(&parsed)
        .map_err(|_| "the argon2id parameters m, t and p are not valid")?;
    let over = |what: &str, value: u32, limit: u32, unit: &str| {
        format!("argon2 {what} {value}{unit} is over the limit of {limit}{unit}: every sign-in attempt would compute it")
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return Err(over("memory (m)", params.m_cost(), MAX_MEMORY_KIB, " KiB"));
    }
    if params.t_cost() > MAX_ITERATIONS {
        return Err(over("iterations (t)", params.t_cost(), MAX_ITERATIONS, ""));
    }
    if params.p_cost() > MAX_PARALLELISM {
        return Err(over(
            "parallelism (p)",
            params.p_cost(),
            MAX_PARALLELISM,
            "",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT_AND_HASH: &str = "c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    fn phc(params: &str) -> String {
        format!("$argon2id$v=19${params}${SALT_AND_HASH}")
    }

    #[test]
    fn common_parameters_are_accepted() {
        // argon2 crate default, OWASP, argon2-cffi default, the limits themselves.
        for p in [
            "m=19456,t=2,p=1",
            "m=47104,t=1,p=1",
            "m=65536,t=3,p=4",
            "m=65536,t=10,p=8",
        ] {
            assert_eq!(check_hash(&phc(p)), Ok(()), "{p}");
        }
    }

    // Security property (issue 17, finding 2): a hash asking for 4 TB, or more passes or
    // lanes than a login can afford, is refused before any login computes it.
    #[test]
    fn costs_over_the_limits_are_refused_with_the_limit_and_without_the_hash() {
        for (p, named) in [
            (
                "m=4294967295,t=1,p=1",
                "memory (m) 4294967295 KiB is over the limit of 65536 KiB",
            ),
            ("m=65537,t=1,p=1", "memory (m) 65537 KiB"),
            (
                "m=65536,t=11,p=1",
                "iterations (t) 11 is over the limit of 10",
            ),
            (
                "m=65536,t=1,p=9",
                "parallelism (p) 9 is over the limit of 8",
            ),
        ] {
            let message = check_hash(&phc(p)).unwrap_err();
            assert!(message.contains(named), "{message}");
            assert!(!message.contains("c29tZXNhbHQ"), "{message}");
            assert!(!message.contains("RdescudvJCsgt3ub"), "{message}");
        }
    }

    #[test]
    fn anything_but_an_argon2id_phc_string_is_refused() {
        for bad in [
            "",
            "hunter2",
            "$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2id$v=19$m=4096,t=3,p=1",
            "$argon2id$v=19$m=4096,t=3,p=1,x=2$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        ] {
            let message = check_hash(bad).unwrap_err();
            assert!(!message.contains("RdescudvJCsgt3ub"), "{message}");
            if !bad.is_empty() {
                assert!(!message.contains(bad), "{message}");
            }
        }
    }
}
