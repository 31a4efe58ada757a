//! Email addresses: `local@domain.tld` with a letters-only top-level domain.
//!
//! Developer text is full of things shaped like addresses that are not: scp-style git
//! remotes (`git@github.com:org/repo.git`), credentials in URLs
//! (`postgres://app@db.example.com/x`) and high-density image names (`logo@2x.png`).
//! Those are recognised by what surrounds them and skipped.

use regex::Regex;

use super::{compile, scan};
use crate::privacy::{Detector, Finding, PhiKind};

/// Image extensions that follow `@2x`-style names; none is a top-level domain.
const IMAGE_EXTENSIONS: [&str; 9] = [
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "tif", "tiff",
];

/// Finds email addresses.
pub(super) struct EmailRule {
    /// The address; the top-level domain in group 1.
    address: Regex,
}

impl EmailRule {
    pub(super) fn new() -> Self {
        Self {
            address: compile(concat!(
                r"(?i)\b[a-z0-9][a-z0-9._%+-]*@",
                r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,24})\b",
            )),
        }
    }
}

impl Detector for EmailRule {
    fn detect(&self, text: &str) -> Vec<Finding> {
        scan(&self.address, text, |caps| {
            let whole = caps.get(0)?;
            let tld = caps.get(1)?.as_str().to_ascii_lowercase();
            let before = text.get(..whole.start()).unwrap_or_default();
            let after = text.get(whole.end()..).unwrap_or_default();
            let token = before
                .rsplit(char::is_whitespace)
                .next()
                .unwrap_or_default();
            let url_credentials = token.contains("://");
            let git_remote = after.starts_with(':') && !after.starts_with(": ");
            let image = IMAGE_EXTENSIONS.contains(&tld.as_str());
            (!url_credentials && !git_remote && !image).then(|| whole.range())
        })
        .into_iter()
        .map(|range| Finding::new(PhiKind::Email, range))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        EmailRule::new()
            .detect(text)
            .iter()
            .filter_map(|f| f.value(text))
            .collect()
    }

    #[test]
    fn finds_addresses() {
        assert_eq!(
            found("mail jane.doe@example.com."),
            ["jane.doe@example.com"]
        );
        assert_eq!(
            found("cc: <J.Smith+labs@mail.example.org>, ops_team@example.co.uk"),
            ["J.Smith+labs@mail.example.org", "ops_team@example.co.uk"]
        );
        assert_eq!(found("email: a@b.io: thanks"), ["a@b.io"]);
    }

    #[test]
    fn ignores_look_alikes() {
        for text in [
            "git clone git@github.com:acme/api.git",
            "DATABASE_URL=postgres://app@db.example.com:5432/app",
            "see logo@2x.png and icon@3x.webp",
            "user@localhost",
            "@Override public void run()",
            "npm i lodash@4.17.21",
            "ping @jane in #ops",
            "x@y",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
