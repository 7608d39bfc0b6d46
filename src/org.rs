//! Organization URL normalization and discovery.
//!
//! The apps call [`normalize_organization_url`] on every keystroke of the org-URL field, so it is
//! pure, cheap, and says exactly what is wrong with the input. [`discover`] then asks the
//! organization how to sign in: `GET {org}/.well-known/syncvault`, or, for Dataverse-style
//! servers, the Bearer challenge of the API root.

use std::net::IpAddr;

use url::{Host, Url};

/// What is wrong with an organization URL; the apps map each to a message next to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum UrlProblem {
    /// Nothing but whitespace was entered.
    Empty,
    /// Whitespace or control characters inside the URL.
    InvalidCharacters,
    /// A scheme other than https (or http on loopback).
    UnsupportedScheme,
    /// http:// to a host that is not loopback: tokens would travel in clear.
    InsecureScheme,
    /// `user:password@` in the URL: credentials never belong in it.
    HasCredentials,
    /// A `?query`: the organization URL names a place, not a request.
    HasQuery,
    /// A `#fragment`.
    HasFragment,
    /// No host, or a host that cannot be a network name.
    InvalidHost,
    /// Not parseable as a URL at all.
    Malformed,
    /// Reachable, but no syncvault organization answers there.
    NotAnOrganization,
}

/// Internal error of this module; mapped to `SyncError::InvalidOrganizationUrl` at the FFI edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*problem))]
pub struct OrgUrlError {
    /// Which rule the input broke.
    pub problem: UrlProblem,
}

fn describe(problem: UrlProblem) -> &'static str {
    match problem {
        UrlProblem::Empty => "enter the organization URL",
        UrlProblem::InvalidCharacters => "the URL contains spaces or control characters",
        UrlProblem::UnsupportedScheme => "the URL must start with https://",
        UrlProblem::InsecureScheme => "http:// is allowed only for this device (loopback)",
        UrlProblem::HasCredentials => "the URL must not contain a user name or password",
        UrlProblem::HasQuery => "the URL must not contain a query (?...)",
        UrlProblem::HasFragment => "the URL must not contain a fragment (#...)",
        UrlProblem::InvalidHost => "the URL has no valid host name",
        UrlProblem::Malformed => "this is not a valid URL",
        UrlProblem::NotAnOrganization => "no organization answers at this URL",
    }
}

fn fail(problem: UrlProblem) -> Result<String, OrgUrlError> {
    Err(OrgUrlError { problem })
}

/// Turns what a person typed into the canonical organization URL, or says what is wrong.
///
/// Rules (docs/protocol.md, "Discovery and authentication"): trim; add `https://` when no scheme is given; lowercase the host
/// (IDNs become punycode); drop the default port and trailing slashes; refuse http:// except on
/// loopback; refuse credentials, queries and fragments. The result is stable: normalizing it again
/// gives the same string.
pub fn normalize_organization_url(input: &str) -> Result<String, OrgUrlError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return fail(UrlProblem::Empty);
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) || trimmed.contains('\\') {
        return fail(UrlProblem::InvalidCharacters);
    }
    // A scheme is present only as `scheme://`; "example.com:8443" is a host and port, and
    // "https:/example.com" is a typo we refuse rather than guess at.
    let with_scheme = match trimmed.find("://") {
        Some(at) if !is_scheme(&trimmed[..at]) => return fail(UrlProblem::Malformed),
        Some(at) if !["http", "https"].contains(&trimmed[..at].to_ascii_lowercase().as_str()) => {
            return fail(UrlProblem::UnsupportedScheme);
        }
        // WHATWG parsing would turn "https:///x" into host "x"; a missing host is an error here.
        Some(at) if trimmed[at + 3..].starts_with('/') => return fail(UrlProblem::InvalidHost),
        Some(_) => trimmed.to_string(),
        None if looks_like_scheme_typo(trimmed) => return fail(UrlProblem::Malformed),
        None => format!("https://{trimmed}"),
    };
    let url = Url::parse(&with_scheme).map_err(|err| OrgUrlError {
        problem: match err {
            url::ParseError::EmptyHost
            | url::ParseError::IdnaError
            | url::ParseError::InvalidDomainCharacter
            | url::ParseError::InvalidIpv4Address
            | url::ParseError::InvalidIpv6Address => UrlProblem::InvalidHost,
            _ => UrlProblem::Malformed,
        },
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return fail(UrlProblem::InsecureScheme),
        _ => return fail(UrlProblem::UnsupportedScheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return fail(UrlProblem::HasCredentials);
    }
    if url.query().is_some() {
        return fail(UrlProblem::HasQuery);
    }
    if url.fragment().is_some() {
        return fail(UrlProblem::HasFragment);
    }
    match url.host() {
        Some(Host::Domain(domain)) if valid_domain(domain) => {}
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {}
        _ => return fail(UrlProblem::InvalidHost),
    }
    let mut out = url.to_string();
    while out.ends_with('/') {
        out.pop();
    }
    Ok(out)
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// "https:/x", "https:x", "http:x" — a scheme with missing slashes.
fn looks_like_scheme_typo(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    ["https:", "http:"].iter().any(|p| lower.starts_with(p))
}

fn valid_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Loopback means this device: `localhost`, 127.0.0.0/8 or `[::1]` (RFC 8252 §8.3).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// What an organization says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OrganizationInfo {
    pub organization_url: String,
    pub name: String,
    /// "oauth" and/or "credentials".
    pub user_modes: Vec<String>,
    /// The OpenID Connect issuer for OAuth user mode.
    pub issuer: Option<String>,
    /// The OAuth client id the app uses (None when only a Bearer challenge was found: the app
    /// supplies its registered client id).
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// Base URL of the sync API.
    pub sync_api: Option<String>,
    /// Where credentials user mode signs in.
    pub credentials_endpoint: Option<String>,
    /// The resource (audience) named by a Bearer challenge.
    pub resource_id: Option<String>,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Url(#[from] OrgUrlError),
    #[error("no organization answers at {0}")]
    NotAnOrganization(String),
    #[error("the organization named an insecure or invalid {what}: {url}")]
    InsecureEndpoint { what: &'static str, url: String },
    /// The organization speaks a sync protocol this version does not (docs/protocol.md,
    /// "Versioning"): the app needs an update, or the server does.
    #[error("the organization speaks sync protocol v{0}; this version speaks v{PROTOCOL_VERSION}")]
    UnsupportedProtocol(u64),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
}

/// The sync protocol version this client speaks (docs/protocol.md).
pub const PROTOCOL_VERSION: u64 = 2;

#[derive(serde::Deserialize)]
struct WellKnown {
    /// Absent from servers older than the field: taken as this client's version.
    protocol_version: Option<u64>,
    name: String,
    #[serde(default)]
    user_modes: Vec<String>,
    oidc: Option<WellKnownOidc>,
    sync_api: Option<String>,
    credentials_endpoint: Option<String>,
}

#[derive(serde::Deserialize)]
struct WellKnownOidc {
    issuer: String,
    client_id: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// An endpoint the organization names must be https, or http on loopback.
pub(crate) fn check_endpoint(what: &'static str, url: &str) -> Result<String, DiscoveryError> {
    let insecure = || DiscoveryError::InsecureEndpoint {
        what,
        url: url.to_string(),
    };
    let parsed = Url::parse(url).map_err(|_| insecure())?;
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(url.trim_end_matches('/').to_string()),
        "http" if is_loopback(&parsed) => Ok(url.trim_end_matches('/').to_string()),
        _ => Err(insecure()),
    }
}

/// Asks the organization how to sign in and where its API is.
pub async fn discover(
    http: &crate::net::Http,
    input: &str,
) -> Result<OrganizationInfo, DiscoveryError> {
    let org = normalize_organization_url(input)?;
    let well_known = http
        .send(
            http.client().get(format!("{org}/.well-known/syncvault")),
            64 * 1024,
        )
        .await?;
    if well_known.status.is_success()
        && let Ok(w) = serde_json::from_slice::<WellKnown>(&well_known.body)
    {
        if let Some(v) = w.protocol_version.filter(|v| *v != PROTOCOL_VERSION) {
            return Err(DiscoveryError::UnsupportedProtocol(v));
        }
        let oidc = w.oidc;
        return Ok(OrganizationInfo {
            organization_url: org.clone(),
            name: w.name,
            user_modes: w.user_modes,
            issuer: oidc
                .as_ref()
                .map(|o| check_endpoint("issuer", &o.issuer))
                .transpose()?,
            client_id: oidc.as_ref().map(|o| o.client_id.clone()),
            scopes: oidc.map(|o| o.scopes).unwrap_or_default(),
            sync_api: w
                .sync_api
                .as_deref()
                .map(|u| check_endpoint("sync API", u))
                .transpose()?,
            credentials_endpoint: w
                .credentials_endpoint
                .as_deref()
                .map(|u| check_endpoint("credentials endpoint", u))
                .transpose()?,
            resource_id: None,
        });
    }
    // Fallback: a Dataverse-style API root names its tenant in a Bearer challenge.
    for path in ["/api", ""] {
        let r = http
            .send(http.client().get(format!("{org}{path}")), 64 * 1024)
            .await?;
        if r.status == reqwest::StatusCode::UNAUTHORIZED
            && let Some(challenge) = r
                .headers
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(parse_bearer_challenge)
        {
            let issuer = issuer_from_authorization_uri(&challenge.authorization_uri);
            return Ok(OrganizationInfo {
                organization_url: org.clone(),
                name: org.clone(),
                user_modes: vec!["oauth".into()],
                issuer: Some(check_endpoint("issuer", &issuer)?),
                client_id: None,
                scopes: vec![
                    "openid".into(),
                    "profile".into(),
                    "email".into(),
                    "offline_access".into(),
                ],
                sync_api: None,
                credentials_endpoint: None,
                resource_id: challenge.resource_id,
            });
        }
    }
    Err(DiscoveryError::NotAnOrganization(org))
}

/// The parameters of a `WWW-Authenticate: Bearer ...` challenge that discovery uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    pub authorization_uri: String,
    pub resource_id: Option<String>,
}

/// Parses `Bearer authorization_uri="...", resource_id="..."` (quoted or not, any order).
pub fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let rest = header.trim();
    let rest = rest
        .strip_prefix("Bearer")
        .or_else(|| rest.strip_prefix("bearer"))?;
    let mut authorization_uri = None;
    let mut resource_id = None;
    for part in rest.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "authorization_uri" | "authorization" => authorization_uri = Some(value),
            "resource_id" | "resource" => resource_id = Some(value),
            _ => {}
        }
    }
    Some(BearerChallenge {
        authorization_uri: authorization_uri?,
        resource_id,
    })
}

/// `https://login.microsoftonline.com/{tenant}/oauth2/authorize` -> the tenant's v2.0 issuer;
/// otherwise the authorization endpoint's parent.
fn issuer_from_authorization_uri(uri: &str) -> String {
    let trimmed = uri.trim_end_matches('/');
    if let Some(base) = trimmed
        .strip_suffix("/oauth2/v2.0/authorize")
        .or_else(|| trimmed.strip_suffix("/oauth2/authorize"))
    {
        return format!("{base}/v2.0");
    }
    trimmed
        .strip_suffix("/authorize")
        .unwrap_or(trimmed)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        let c = parse_bearer_challenge(
            "Bearer authorization_uri=https://login.microsoftonline.com/72f988bf/oauth2/authorize, resource_id=https://org.crm.dynamics.com/",
        )
        .unwrap();
        assert_eq!(
            c.authorization_uri,
            "https://login.microsoftonline.com/72f988bf/oauth2/authorize"
        );
        assert_eq!(
            c.resource_id.as_deref(),
            Some("https://org.crm.dynamics.com/")
        );
        assert_eq!(
            issuer_from_authorization_uri(&c.authorization_uri),
            "https://login.microsoftonline.com/72f988bf/v2.0"
        );
        let q = parse_bearer_challenge("Bearer resource_id=\"x\", authorization_uri=\"http://127.0.0.1:9/idp/authorize\", error=\"invalid_token\"").unwrap();
        assert_eq!(
            issuer_from_authorization_uri(&q.authorization_uri),
            "http://127.0.0.1:9/idp"
        );
        assert!(parse_bearer_challenge("Basic realm=x").is_none());
        assert!(parse_bearer_challenge("Bearer error=\"invalid_token\"").is_none());
    }

    #[test]
    fn endpoints_must_be_secure() {
        assert!(check_endpoint("issuer", "https://login.example.com/t/v2.0/").is_ok());
        assert!(check_endpoint("issuer", "http://127.0.0.1:8080/idp").is_ok());
        assert!(check_endpoint("issuer", "http://login.example.com").is_err());
        assert!(check_endpoint("issuer", "javascript:alert(1)").is_err());
    }

    fn ok(input: &str) -> String {
        normalize_organization_url(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn problem(input: &str) -> UrlProblem {
        normalize_organization_url(input)
            .expect_err(&format!("{input:?} should be refused"))
            .problem
    }

    #[test]
    fn adds_https_and_canonicalizes() {
        let cases = [
            ("contoso.crm.example.com", "https://contoso.crm.example.com"),
            ("  contoso.example.com  ", "https://contoso.example.com"),
            ("\tcontoso.example.com\n", "https://contoso.example.com"),
            (
                "https://Contoso.Example.COM/",
                "https://contoso.example.com",
            ),
            ("HTTPS://contoso.example.com", "https://contoso.example.com"),
            ("contoso.example.com/", "https://contoso.example.com"),
            ("contoso.example.com//", "https://contoso.example.com"),
            ("contoso.example.com:443", "https://contoso.example.com"),
            (
                "contoso.example.com:8443",
                "https://contoso.example.com:8443",
            ),
            (
                "https://example.com/Org/Tenant/",
                "https://example.com/Org/Tenant",
            ),
            ("https://example.com/a/./b/../c", "https://example.com/a/c"),
            ("münchen.example", "https://xn--mnchen-3ya.example"),
            ("https://10.1.2.3", "https://10.1.2.3"),
            ("https://[2001:db8::1]:8443/", "https://[2001:db8::1]:8443"),
            ("crm", "https://crm"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), want, "input {input:?}");
        }
    }

    #[test]
    fn http_only_on_loopback() {
        assert_eq!(ok("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://127.9.9.9"), "http://127.9.9.9");
        assert_eq!(ok("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(ok("http://[::1]:3000"), "http://[::1]:3000");
        assert_eq!(
            problem("http://contoso.example.com"),
            UrlProblem::InsecureScheme
        );
        assert_eq!(problem("http://10.0.0.1"), UrlProblem::InsecureScheme);
        assert_eq!(
            problem("http://localhost.evil.com"),
            UrlProblem::InsecureScheme
        );
        assert_eq!(problem("http://128.0.0.1"), UrlProblem::InsecureScheme);
    }

    #[test]
    fn refuses_what_does_not_belong() {
        let cases = [
            ("", UrlProblem::Empty),
            ("   ", UrlProblem::Empty),
            ("conto so.example.com", UrlProblem::InvalidCharacters),
            ("contoso.example.com\u{0}", UrlProblem::InvalidCharacters),
            (
                "https:\\\\contoso.example.com",
                UrlProblem::InvalidCharacters,
            ),
            ("ftp://contoso.example.com", UrlProblem::UnsupportedScheme),
            ("javascript://alert(1)", UrlProblem::UnsupportedScheme),
            ("file:///etc/passwd", UrlProblem::UnsupportedScheme),
            (
                "https://user:pw@contoso.example.com",
                UrlProblem::HasCredentials,
            ),
            (
                "https://user@contoso.example.com",
                UrlProblem::HasCredentials,
            ),
            ("contoso.example.com?tenant=1", UrlProblem::HasQuery),
            ("https://contoso.example.com/?", UrlProblem::HasQuery),
            ("contoso.example.com#x", UrlProblem::HasFragment),
            ("https://contoso.example.com/#", UrlProblem::HasFragment),
            ("https://", UrlProblem::InvalidHost),
            ("https:///path", UrlProblem::InvalidHost),
            ("https://-bad-.example.com", UrlProblem::InvalidHost),
            ("https://a..b.example.com", UrlProblem::InvalidHost),
            ("https://under_score.example.com", UrlProblem::InvalidHost),
            ("https://[::1", UrlProblem::InvalidHost),
            ("https:/contoso.example.com", UrlProblem::Malformed),
            ("https:contoso.example.com", UrlProblem::Malformed),
            ("://contoso.example.com", UrlProblem::Malformed),
            ("1http://contoso.example.com", UrlProblem::Malformed),
            ("contoso.example.com:99999", UrlProblem::Malformed),
            ("contoso.example.com:port", UrlProblem::Malformed),
        ];
        for (input, want) in cases {
            assert_eq!(problem(input), want, "input {input:?}");
        }
    }

    #[test]
    fn normalization_is_idempotent_on_many_inputs() {
        let hosts = [
            "Contoso.example.com",
            "localhost",
            "127.0.0.1",
            "[::1]",
            "xn--mnchen-3ya.example",
        ];
        let schemes = ["", "https://", "http://", "HTTPS://"];
        let ports = ["", ":443", ":8443", ":80"];
        let paths = ["", "/", "/org", "/org/", "/A/b/"];
        for h in hosts {
            for s in schemes {
                for p in ports {
                    for path in paths {
                        let input = format!("{s}{h}{p}{path}");
                        if let Ok(once) = normalize_organization_url(&input) {
                            assert_eq!(ok(&once), once, "not idempotent for {input:?}");
                            assert!(!once.ends_with('/'), "{once}");
                            assert_eq!(once, once.trim());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_problem_has_a_message() {
        let err = normalize_organization_url("http://example.com").unwrap_err();
        assert!(err.to_string().contains("loopback"));
    }
}
