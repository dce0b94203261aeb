//! `serve --token-file`: the tokens clients present, and which endpoints each may use,
//! so that a scraper can add articles without being able to take any out, and a
//! dashboard can query without storing anything.

use std::path::Path;

use anyhow::{Context, Result};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// An endpoint a token may be limited to (`/health` is open to all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Articles,
    Query,
    Remove,
    Stats,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::Articles,
        Endpoint::Query,
        Endpoint::Remove,
        Endpoint::Stats,
    ];

    /// Its name in a token file, as in its path.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Articles => "articles",
            Endpoint::Query => "query",
            Endpoint::Remove => "remove",
            Endpoint::Stats => "stats",
        }
    }

    /// The endpoint a request's path names, if it is one a token can be limited to.
    pub fn of_path(path: &str) -> Option<Endpoint> {
        Endpoint::named(path.strip_prefix('/')?)
    }

    fn named(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The endpoints one token may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant(u8);

impl Grant {
    /// Every endpoint: a token with no list after it.
    pub const ALL: Grant = Grant(0b1111);

    pub fn allows(self, endpoint: Endpoint) -> bool {
        self.0 & endpoint.bit() != 0
    }

    /// The endpoints allowed, as paths: "/query, /stats".
    pub fn paths(self) -> String {
        let allowed: Vec<String> = Endpoint::ALL
            .into_iter()
            .filter(|&e| self.allows(e))
            .map(|e| format!("/{}", e.name()))
            .collect();
        allowed.join(", ")
    }
}

/// The tokens of a token file, each with its grant.
#[derive(Debug)]
pub struct Tokens {
    tokens: Vec<(Vec<u8>, Grant)>,
}

impl Tokens {
    /// Reads a token file: a token per line, optionally followed by the endpoints it may
    /// use (`articles`, `query`, `remove`, `stats`, separated by spaces or commas; none
    /// named: all), then optionally a `#` comment. Blank lines and lines starting with
    /// `#` are skipped. A file without a token is refused.
    pub fn read(path: &Path) -> Result<Tokens> {
        std::fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .and_then(|text| Self::parse(&text))
            .with_context(|| format!("reading the token file {}", path.display()))
    }

    fn parse(text: &str) -> Result<Tokens> {
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let token = words.next().unwrap_or_default();
            anyhow::ensure!(
                token.bytes().all(|b| b.is_ascii_graphic()),
                "the token on line {} holds a character a header cannot carry (controls or \
                 non-ASCII)",
                i + 1
            );
            let mut grant = 0u8;
            for word in words.take_while(|w| !w.starts_with('#')) {
                for name in word.split(',').filter(|n| !n.is_empty()) {
                    let Some(endpoint) = Endpoint::named(name) else {
                        anyhow::bail!(
                            "line {} limits its token to '{name}', which is no endpoint \
                             (articles, query, remove, stats; none named: all of them)",
                            i + 1
                        );
                    };
                    grant |= endpoint.bit();
                }
            }
            let grant = if grant == 0 { Grant::ALL } else { Grant(grant) };
            tokens.push((token.as_bytes().to_vec(), grant));
        }
        anyhow::ensure!(
            !tokens.is_empty(),
            "it holds no token (one per line, optionally followed by the endpoints it may \
             use; blank lines and '#' comments are skipped)"
        );
        Ok(Tokens { tokens })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// What the token `given` may use, or `None` when it is none of these. In constant
    /// time, every token compared: how much of a guess matched, or which token it was
    /// near, must not show in the time to answer.
    pub fn grant_of(&self, given: &[u8]) -> Option<Grant> {
        let mut matched = Choice::from(0);
        let mut grant = 0u8;
        for (token, granted) in &self.tokens {
            let this = given.ct_eq(&token[..]);
            grant = u8::conditional_select(&grant, &granted.0, this);
            matched |= this;
        }
        bool::from(matched).then_some(Grant(grant))
    }
}

/// The token of an `Authorization` header value of the Bearer scheme. The scheme's name
/// is case-insensitive (RFC 7235: `bearer`, `BEARER` are Bearer), and one or more spaces
/// may follow it.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") || !rest.starts_with(b" ") {
        return None;
    }
    Some(rest.trim_ascii_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_whatever_its_case() {
        for value in [
            &b"Bearer tok"[..],
            b"bearer tok",
            b"BEARER tok",
            b"bEaReR   tok",
        ] {
            assert_eq!(bearer(value), Some(&b"tok"[..]), "{value:?}");
        }
        for value in [&b"Basic tok"[..], b"Bearertok", b"Bearer", b"Bear tok", b""] {
            assert_eq!(bearer(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_token_alone_may_use_everything_and_a_list_limits_it() {
        let tokens = Tokens::parse(
            "# scrapers\nalpha\n\n  beta articles  # pushes only\ngamma query,stats\n\
             delta remove, query\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 4);
        assert_eq!(tokens.grant_of(b"alpha"), Some(Grant::ALL));
        let beta = tokens.grant_of(b"beta").unwrap();
        assert!(beta.allows(Endpoint::Articles) && !beta.allows(Endpoint::Query));
        assert_eq!(beta.paths(), "/articles");
        assert_eq!(tokens.grant_of(b"gamma").unwrap().paths(), "/query, /stats");
        assert_eq!(
            tokens.grant_of(b"delta").unwrap().paths(),
            "/query, /remove"
        );
        for stranger in [&b""[..], b"alph", b"alphaa", b"articles", b"#", b"scrapers"] {
            assert_eq!(tokens.grant_of(stranger), None, "{stranger:?}");
        }
    }

    #[test]
    fn a_file_without_tokens_or_with_an_unknown_endpoint_is_refused() {
        let none = Tokens::parse("# nobody\n\n").unwrap_err();
        assert!(format!("{none:#}").contains("holds no token"), "{none:#}");
        let unknown = Tokens::parse("alpha\nbeta query,delete\n").unwrap_err();
        let said = format!("{unknown:#}");
        assert!(
            said.contains("line 2") && said.contains("'delete'"),
            "{said}"
        );
        let control = Tokens::parse("al\u{7}pha\n").unwrap_err();
        assert!(format!("{control:#}").contains("line 1"), "{control:#}");
    }

    #[test]
    fn paths_name_the_endpoints_tokens_are_limited_to() {
        assert_eq!(Endpoint::of_path("/remove"), Some(Endpoint::Remove));
        assert_eq!(Endpoint::of_path("/health"), None);
        assert_eq!(Endpoint::of_path("remove"), None);
        assert_eq!(Endpoint::of_path("/articles/"), None);
    }
}
