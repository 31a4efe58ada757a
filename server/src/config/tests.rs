//! Unit tests of the configuration: layering, validation, masking.

use super::*;

fn from_toml(text: &str) -> Result<Config, ConfigError> {
    let config: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(text))
        .extract()
        .map_err(|err| ConfigError::Invalid(one_line(&err)))?;
    config.validate()?;
    Ok(config)
}

#[test]
fn shipped_example_parses() {
    let example = include_str!("../../codexcontinue.example.toml");
    let config = from_toml(example).expect("example config is valid");
    assert_eq!(config.server.listen.port(), 50051);
    assert_eq!(config.telemetry.log_format, LogFormat::Pretty);
}

#[test]
fn missing_database_url_names_the_setting() {
    let err = from_toml("[redis]\nurl = \"redis://127.0.0.1\"\n").unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("database.url is not set"), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
}

#[test]
fn unknown_key_is_refused() {
    let err = from_toml("[server]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
}

#[test]
fn wrong_scheme_is_refused() {
    let err =
        from_toml("[database]\nurl = \"mysql://x@h/db\"\n[redis]\nurl = \"redis://127.0.0.1\"\n")
            .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("database.url is invalid: scheme \"mysql\""),
        "{err}"
    );
}

#[test]
fn masked_toml_hides_passwords() {
    let config = from_toml(
        "[database]\nurl = \"postgres://app:hunter2@db:5432/cc\"\n\
         [redis]\nurl = \"redis://:s3cret@cache:6379\"\n",
    )
    .unwrap();
    let shown = config.to_masked_toml();
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
    assert!(shown.contains("postgres://app:****@db:5432/cc"), "{shown}");
}

#[test]
fn rate_limits_auth_urls_and_master_key_are_checked() {
    let base = "[database]\nurl = \"postgres://db/cc\"\n";
    let err = from_toml(&format!(
        "{base}[rate_limit]\nper_caller_per_second = 0.0\n"
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rate_limit.per_caller_per_second is invalid"),
        "{err}"
    );
    for calls in ["0", "2000000"] {
        let err =
            from_toml(&format!("{base}[server]\nmax_concurrent_calls = {calls}\n")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("server.max_concurrent_calls is invalid"),
            "{err}"
        );
    }
    let err = from_toml(&format!("{base}[auth]\nconsole_url = \"ftp://x\"\n")).unwrap_err();
    assert!(
        err.to_string().starts_with("auth.console_url is invalid"),
        "{err}"
    );
    let err = from_toml(&format!("{base}[crypto]\nmaster_key = \"c2hvcnQ=\"\n")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("crypto.master_key is invalid: must be 32 bytes"),
        "{err}"
    );
    let key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let config = from_toml(&format!("{base}[crypto]\nmaster_key = \"{key}\"\n")).unwrap();
    assert!(!config.to_masked_toml().contains(key), "master key masked");
}

#[test]
fn zero_duration_is_refused() {
    let err = from_toml(
        "[database]\nurl = \"postgres://db/cc\"\n[redis]\nurl = \"redis://cache\"\n\
         [health]\nprobe_interval = \"0s\"\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("health.probe_interval is invalid"),
        "{err}"
    );
}

#[test]
fn jobs_breaker_and_platform_provider_are_checked() {
    let base = "[database]\nurl = \"postgres://db/cc\"\n";
    let refused = |extra: &str| {
        from_toml(&format!("{base}{extra}"))
            .unwrap_err()
            .to_string()
    };
    assert!(
        refused("[jobs]\nretry_base = \"10s\"\nretry_max = \"1s\"\n")
            .starts_with("jobs.retry_max is invalid")
    );
    assert!(
        refused("[llm.breaker]\nfailures = 0\n").starts_with("llm.breaker.failures is invalid")
    );
    let platform = "[llm.platform_default]\nkind = \"ollama\"\nendpoint = \"http://gpu:11434\"\n";
    assert!(
        refused(platform).starts_with("llm.platform_default.models is invalid"),
        "a default model is needed"
    );
    assert!(
        refused("[llm.platform_default]\nkind = \"local\"\nmodels = [\"m\"]\n")
            .starts_with("llm.platform_default.kind is invalid")
    );
    let secret = "sk-platform-secret";
    let config = from_toml(&format!(
        "{base}{platform}models = [\"llama3.1\"]\ncredential = \"{secret}\"\n"
    ))
    .unwrap();
    let platform = config.llm.platform_default.as_ref().unwrap();
    assert_eq!(platform.name, "platform");
    assert!(
        !config.to_masked_toml().contains(secret),
        "credential masked"
    );
}

#[test]
fn secrets_in_urls_are_masked() {
    assert_eq!(
        super::mask_url("postgres://app:hunter2@db:5432/cc?sslmode=require&password=hunter3"),
        "postgres://app:****@db:5432/cc?sslmode=require&password=****"
    );
    assert_eq!(
        super::mask_url("https://gateway.example/v1?api-key=sk-1&deployment=a"),
        "https://gateway.example/v1?api-key=****&deployment=a"
    );
    let platform = "[database]\nurl = \"postgres://db/cc\"\n\
                    [llm.platform_default]\nkind = \"openai_compatible\"\n\
                    endpoint = \"https://u:sk-in-url@gw.example/v1\"\nmodels = [\"m\"]\n";
    let shown = from_toml(platform).unwrap().to_masked_toml();
    assert!(!shown.contains("sk-in-url"), "{shown}");
}

#[test]
fn a_key_prefix_with_braces_is_refused() {
    let err = from_toml(
        "[database]\nurl = \"postgres://app@db/cc\"\n[redis]\nkey_prefix = \"app{1}:\"\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("redis.key_prefix is invalid: must not contain { or }"),
        "{err}"
    );
}
