//! The Worker variables (wrangler.toml `[vars]`, wrangler.account.toml and
//! wrangler.engine.toml `[vars]`, and the `WEBHOOK_SECRET_KEY` secret): each one's name and
//! default written once, here, and read once per isolate (`Config::get`; a
//! deployment's variables never change under a running isolate). A value
//! that does not parse falls back to the default, as an unset one does.
//! Parsing is pure (`Config::from_vars`), tested natively. Each Worker's
//! build holds only the settings it reads (the others are cfg'd out).

use std::cell::OnceCell;

#[cfg(feature = "engine")]
use crate::domain::webhook::{parse_delays, DEFAULT_DELAYS, DEFAULT_HISTORY_PER_ENDPOINT};

/// Every setting the code reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    #[cfg(feature = "engine")]
    /// `RATE_LIMIT_PER_MINUTE`: requests per window and API key (60).
    pub rate_limit_per_minute: u32,
    #[cfg(feature = "engine")]
    /// `DAILY_QUOTA`: requests per UTC day and API key (10000).
    pub daily_quota: u32,
    #[cfg(feature = "engine")]
    /// `SESSION_RATE_LIMIT_PER_MINUTE`: requests per window and session (120).
    pub session_rate_limit_per_minute: u32,
    #[cfg(feature = "engine")]
    /// `RATE_LIMIT_WINDOW_SECONDS`: the rate-limit window, at least 1 (60).
    pub rate_limit_window_seconds: i64,
    #[cfg(feature = "engine")]
    /// `USAGE_FLUSH_SECONDS`: how soon the Gate writes usage to D1 (60).
    pub usage_flush_seconds: i64,
    #[cfg(any(feature = "api", feature = "account"))]
    /// `MAX_UPLOAD_BYTES`: the largest file accepted (100 MiB).
    pub max_upload_bytes: u32,
    #[cfg(any(feature = "api", feature = "account"))]
    /// `CREDENTIAL_MISS_MAX`: unknown credentials one address may present per window (30).
    pub credential_miss_max: u32,
    #[cfg(any(feature = "api", feature = "account"))]
    /// `CREDENTIAL_MISS_WINDOW_SECONDS`: the window of those misses (600).
    pub credential_miss_window_seconds: i64,
    #[cfg(feature = "account")]
    /// `SIGNUP_MAX_PER_ADDRESS`: sign-ups one address may make per window (10).
    pub signup_max_per_address: u32,
    #[cfg(feature = "account")]
    /// `SIGNUP_WINDOW_SECONDS`: the window of those sign-ups (3600).
    pub signup_window_seconds: i64,
    #[cfg(feature = "account")]
    /// `LOGIN_MAX_FAILURES`: failed password checks per window (10).
    pub login_max_failures: u32,
    #[cfg(feature = "account")]
    /// `LOGIN_WINDOW_SECONDS`: the window of those failures (900).
    pub login_window_seconds: i64,
    /// `WEBHOOK_ALLOW_LOOPBACK`: `true` lets webhooks reach 127.0.0.1 (development).
    pub webhook_allow_loopback: bool,
    #[cfg(feature = "account")]
    /// `CIMD_ALLOW_LOOPBACK`: `true` admits http://127.0.0.1 client metadata documents (development and tests).
    pub cimd_allow_loopback: bool,
    #[cfg(feature = "engine")]
    /// `WEBHOOK_RETRY_DELAYS`: seconds before each retry (`DEFAULT_DELAYS`).
    pub webhook_retry_delays: Vec<u32>,
    #[cfg(feature = "engine")]
    /// Why `WEBHOOK_RETRY_DELAYS` was not used, when it was set but malformed.
    pub webhook_retry_delays_error: Option<String>,
    #[cfg(feature = "api")]
    /// `WEBHOOK_SECRET_GRACE_SECONDS`: how long a rotated-out secret still signs (a day).
    pub webhook_secret_grace_seconds: i64,
    /// `WEBHOOK_SECRET_KEY` (a secret; also read as a var so `--var` works
    /// locally): the key sealing endpoint secrets at rest, unparsed; none
    /// when unset or blank.
    pub webhook_secret_key: Option<String>,
    #[cfg(feature = "engine")]
    /// `EXPIRY_NOTICE_SECONDS`: before expiry, when to send `key.expiring` (7 days and 1 day).
    pub expiry_notice_seconds: Vec<i64>,
    #[cfg(feature = "engine")]
    /// `MEDIA_ORPHAN_SECONDS`: how long an unattached upload is kept (a day).
    pub media_orphan_seconds: i64,
    #[cfg(feature = "engine")]
    /// `WEBHOOK_HISTORY_PER_ENDPOINT`: finished deliveries each endpoint keeps, at least 1 (1000).
    pub webhook_history_per_endpoint: u32,
    #[cfg(feature = "engine")]
    /// `MAX_RESUMABLE_UPLOAD_BYTES`: the largest tus upload (1 GiB).
    pub max_resumable_upload_bytes: u64,
    #[cfg(feature = "engine")]
    /// `UPLOAD_EXPIRY_SECONDS`: how long an unfinished tus upload is kept (a day).
    pub upload_expiry_seconds: i64,
    #[cfg(feature = "account")]
    /// `LEAK_REPORT_PUBLIC_KEYS`: PEM keys trusted to sign leak reports (none).
    pub leak_report_public_keys: String,
    #[cfg(feature = "account")]
    /// `OAUTH_ACCESS_TOKEN_TTL_SECONDS`: an OAuth access token's life (an hour).
    pub oauth_access_token_ttl_seconds: i64,
    #[cfg(feature = "account")]
    /// `OAUTH_REFRESH_TOKEN_TTL_SECONDS`: a refresh token's life; each rotation starts a new one (30 days).
    pub oauth_refresh_token_ttl_seconds: i64,
    #[cfg(feature = "api")]
    /// `BENCH_ROUTES`: exactly `true` serves `/__bench/*`.
    pub bench_routes: bool,
    #[cfg(feature = "account")]
    /// `ADMIN_USERNAMES`: the operators' usernames, comma separated (none).
    pub admin_usernames: Vec<String>,
}

/// A numeric variable, trimmed; unset or malformed gives `default`.
#[cfg(any(feature = "api", feature = "account", feature = "engine"))]
fn number(var: &impl Fn(&str) -> Option<String>, name: &str, default: u32) -> u32 {
    var(name).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

impl Config {
    /// The configuration from a variable lookup (`None`: unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Config {
        #[cfg(feature = "engine")]
        let (webhook_retry_delays, webhook_retry_delays_error) = match var("WEBHOOK_RETRY_DELAYS").map(|s| parse_delays(&s)) {
            Some(Ok(d)) => (d, None),
            Some(Err(e)) => (DEFAULT_DELAYS.to_vec(), Some(e)),
            None => (DEFAULT_DELAYS.to_vec(), None),
        };
        #[cfg(feature = "engine")]
        let thresholds = var("EXPIRY_NOTICE_SECONDS").unwrap_or_else(|| "604800,86400".into());
        Config {
            #[cfg(feature = "engine")]
            rate_limit_per_minute: number(&var, "RATE_LIMIT_PER_MINUTE", 60),
            #[cfg(feature = "engine")]
            daily_quota: number(&var, "DAILY_QUOTA", 10_000),
            #[cfg(feature = "engine")]
            session_rate_limit_per_minute: number(&var, "SESSION_RATE_LIMIT_PER_MINUTE", 120),
            #[cfg(feature = "engine")]
            rate_limit_window_seconds: number(&var, "RATE_LIMIT_WINDOW_SECONDS", 60).max(1) as i64,
            #[cfg(feature = "engine")]
            usage_flush_seconds: number(&var, "USAGE_FLUSH_SECONDS", 60) as i64,
            #[cfg(any(feature = "api", feature = "account"))]
            max_upload_bytes: number(&var, "MAX_UPLOAD_BYTES", 104_857_600),
            #[cfg(any(feature = "api", feature = "account"))]
            credential_miss_max: number(&var, "CREDENTIAL_MISS_MAX", 30),
            #[cfg(any(feature = "api", feature = "account"))]
            credential_miss_window_seconds: number(&var, "CREDENTIAL_MISS_WINDOW_SECONDS", 600).max(1) as i64,
            #[cfg(feature = "account")]
            signup_max_per_address: number(&var, "SIGNUP_MAX_PER_ADDRESS", 10),
            #[cfg(feature = "account")]
            signup_window_seconds: number(&var, "SIGNUP_WINDOW_SECONDS", 3600).max(1) as i64,
            #[cfg(feature = "account")]
            login_max_failures: number(&var, "LOGIN_MAX_FAILURES", 10),
            #[cfg(feature = "account")]
            login_window_seconds: number(&var, "LOGIN_WINDOW_SECONDS", 900) as i64,
            webhook_allow_loopback: var("WEBHOOK_ALLOW_LOOPBACK").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            #[cfg(feature = "account")]
            cimd_allow_loopback: var("CIMD_ALLOW_LOOPBACK").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            #[cfg(feature = "engine")]
            webhook_retry_delays,
            #[cfg(feature = "engine")]
            webhook_retry_delays_error,
            #[cfg(feature = "api")]
            webhook_secret_grace_seconds: number(&var, "WEBHOOK_SECRET_GRACE_SECONDS", 86_400) as i64,
            webhook_secret_key: var("WEBHOOK_SECRET_KEY").filter(|s| !s.trim().is_empty()),
            #[cfg(feature = "engine")]
            expiry_notice_seconds: thresholds.split(',').filter_map(|s| s.trim().parse::<i64>().ok()).collect(),
            #[cfg(feature = "engine")]
            media_orphan_seconds: number(&var, "MEDIA_ORPHAN_SECONDS", 86_400) as i64,
            #[cfg(feature = "engine")]
            webhook_history_per_endpoint: number(&var, "WEBHOOK_HISTORY_PER_ENDPOINT", DEFAULT_HISTORY_PER_ENDPOINT).max(1),
            #[cfg(feature = "engine")]
            max_resumable_upload_bytes: u64::from(number(&var, "MAX_RESUMABLE_UPLOAD_BYTES", 1 << 30)),
            #[cfg(feature = "engine")]
            upload_expiry_seconds: number(&var, "UPLOAD_EXPIRY_SECONDS", 86_400).max(1) as i64,
            #[cfg(feature = "account")]
            leak_report_public_keys: var("LEAK_REPORT_PUBLIC_KEYS").unwrap_or_default(),
            #[cfg(feature = "account")]
            oauth_access_token_ttl_seconds: number(&var, "OAUTH_ACCESS_TOKEN_TTL_SECONDS", 3600).max(1) as i64,
            #[cfg(feature = "account")]
            oauth_refresh_token_ttl_seconds: number(&var, "OAUTH_REFRESH_TOKEN_TTL_SECONDS", 2_592_000).max(1) as i64,
            #[cfg(feature = "api")]
            bench_routes: var("BENCH_ROUTES").is_some_and(|v| v == "true"),
            #[cfg(feature = "account")]
            admin_usernames: var("ADMIN_USERNAMES")
                .unwrap_or_default()
                .split(',')
                .map(|u| u.trim().to_ascii_lowercase())
                .filter(|u| !u.is_empty())
                .collect(),
        }
    }

    #[cfg(feature = "account")]
    /// Whether the account named `username` is an operator.
    pub fn is_operator(&self, username: &str) -> bool {
        self.admin_usernames.iter().any(|u| u == username)
    }

    /// The configuration of this Worker's environment: secrets first, then vars.
    pub fn from_env(env: &worker::Env) -> Config {
        Config::from_vars(|name| {
            let secret = (name == "WEBHOOK_SECRET_KEY").then(|| env.secret(name).ok().map(|s| s.to_string())).flatten();
            secret.or_else(|| env.var(name).ok().map(|v| v.to_string()))
        })
    }

    /// This isolate's configuration, read from `env` on first use.
    pub fn get(env: &worker::Env) -> &'static Config {
        thread_local! {
            static CONFIG: OnceCell<&'static Config> = const { OnceCell::new() };
        }
        CONFIG.with(|c| *c.get_or_init(|| Box::leak(Box::new(Config::from_env(env)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Config {
        Config::from_vars(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn unset_variables_take_their_defaults() {
        let c = with(&[]);
        assert_eq!((c.rate_limit_per_minute, c.daily_quota, c.session_rate_limit_per_minute), (60, 10_000, 120));
        assert_eq!((c.rate_limit_window_seconds, c.usage_flush_seconds), (60, 60));
        assert_eq!((c.login_max_failures, c.login_window_seconds), (10, 900));
        assert_eq!((c.credential_miss_max, c.credential_miss_window_seconds), (30, 600));
        assert_eq!((c.signup_max_per_address, c.signup_window_seconds), (10, 3600));
        assert_eq!(c.max_upload_bytes, 104_857_600);
        assert_eq!((c.webhook_secret_grace_seconds, c.media_orphan_seconds), (86_400, 86_400));
        assert_eq!(c.webhook_retry_delays, DEFAULT_DELAYS.to_vec());
        assert_eq!(c.webhook_retry_delays_error, None);
        assert_eq!(c.expiry_notice_seconds, vec![604_800, 86_400]);
        assert_eq!((c.max_resumable_upload_bytes, c.upload_expiry_seconds), (1 << 30, 86_400));
        assert_eq!(c.webhook_history_per_endpoint, 1000);
        assert!(!c.webhook_allow_loopback && !c.bench_routes && !c.cimd_allow_loopback);
        assert_eq!((c.webhook_secret_key, c.leak_report_public_keys.as_str()), (None, ""));
        assert_eq!((c.oauth_access_token_ttl_seconds, c.oauth_refresh_token_ttl_seconds), (3600, 2_592_000));
    }

    #[test]
    fn values_are_trimmed_and_malformed_numbers_fall_back() {
        let c = with(&[("DAILY_QUOTA", " 5 "), ("RATE_LIMIT_PER_MINUTE", "lots"), ("RATE_LIMIT_WINDOW_SECONDS", "0")]);
        assert_eq!(c.daily_quota, 5);
        assert_eq!(c.rate_limit_per_minute, 60);
        assert_eq!(c.rate_limit_window_seconds, 1, "a window is at least a second");
    }

    #[test]
    fn switches_and_lists_read_as_the_workers_always_read_them() {
        let c = with(&[("WEBHOOK_ALLOW_LOOPBACK", " TRUE "), ("BENCH_ROUTES", "True"), ("EXPIRY_NOTICE_SECONDS", "60, x,5")]);
        assert!(c.webhook_allow_loopback && !c.cimd_allow_loopback, "each switch is its own");
        assert!(with(&[("CIMD_ALLOW_LOOPBACK", "true")]).cimd_allow_loopback);
        assert!(!c.bench_routes, "BENCH_ROUTES is exactly `true`");
        assert_eq!(c.expiry_notice_seconds, vec![60, 5]);
        assert!(with(&[("EXPIRY_NOTICE_SECONDS", "")]).expiry_notice_seconds.is_empty(), "set but empty: no notices");
    }

    #[test]
    fn a_malformed_retry_schedule_falls_back_and_says_why() {
        let c = with(&[("WEBHOOK_RETRY_DELAYS", "5,abc")]);
        assert_eq!(c.webhook_retry_delays, DEFAULT_DELAYS.to_vec());
        assert!(c.webhook_retry_delays_error.is_some());
        assert_eq!(with(&[("WEBHOOK_RETRY_DELAYS", "1,2")]).webhook_retry_delays, vec![1, 2]);
    }

    #[test]
    fn operators_are_the_listed_usernames_exactly() {
        let c = with(&[("ADMIN_USERNAMES", " Root, ops_2 ,,")]);
        assert_eq!(c.admin_usernames, vec!["root", "ops_2"]);
        assert!(c.is_operator("root") && c.is_operator("ops_2"));
        assert!(!c.is_operator("roo") && !c.is_operator("rootx") && !c.is_operator(""));
        assert!(with(&[]).admin_usernames.is_empty(), "no operators unless named");
        assert!(!with(&[("ADMIN_USERNAMES", "")]).is_operator(""));
    }

    #[test]
    fn a_blank_secret_key_is_no_key() {
        assert_eq!(with(&[("WEBHOOK_SECRET_KEY", "  ")]).webhook_secret_key, None);
        assert_eq!(with(&[("WEBHOOK_SECRET_KEY", "abc")]).webhook_secret_key.as_deref(), Some("abc"));
    }
}
