//! `cargo xtask push`: pushes the image over the OCI distribution API to any registry, or to
//! Amazon ECR.
//!
//! Blobs that the registry already has are skipped (`HEAD`), the others are uploaded in one
//! request each (`POST` then `PUT ?digest=`), then the manifest is `PUT` under the tag.
//! Transient failures (connection errors, 408, 429, 5xx) are retried with backoff. Plain HTTP
//! is used for loopback registries only (unless `--insecure`). Credentials come from
//! `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`): basic auth, and the Bearer token
//! flow when the registry's `WWW-Authenticate` asks for it. For ECR (an ECR host, or `--ecr`)
//! the AWS SDK creates the repository if missing and gets a token with
//! `GetAuthorizationToken`; `AWS_ENDPOINT_URL` and friends work as usual. Not for: building
//! the image (`image/`).

use crate::aws_args::PushArgs;
use crate::{Project, image};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::{Method, StatusCode, Url, header};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Runs the verb.
pub fn run(project: &Project, mut args: PushArgs) -> Result<ExitCode> {
    let layout = match &args.layout {
        Some(dir) => dir.clone(),
        None => image::build(project, &image::Args::default())?.layout,
    };
    args.repository
        .get_or_insert_with(|| project.image().to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let pushed = runtime.block_on(push(&args, &layout))?;
    println!("pushed   {}", pushed.reference);
    println!("digest   {}", pushed.digest);
    println!("by digest {}", pushed.by_digest);
    println!(
        "uploaded {} blob(s), {} already present",
        pushed.uploaded, pushed.skipped
    );
    Ok(ExitCode::SUCCESS)
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `host/repository:tag`.
    pub reference: String,
    /// `host/repository@sha256:...`.
    pub by_digest: String,
    /// The manifest digest.
    pub digest: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
}

/// An image read back from an OCI layout directory.
struct LayoutImage {
    manifest: Vec<u8>,
    manifest_type: String,
    digest: String,
    tag: Option<String>,
    /// (digest, bytes) of the config and the layers.
    blobs: Vec<(String, Vec<u8>)>,
}

fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("unsupported digest {digest}"))?;
    let path = layout.join("blobs").join("sha256").join(hex);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let actual = image::oci::sha256_digest(&bytes);
    if actual != digest {
        bail!("{} is corrupt: its digest is {actual}", path.display());
    }
    Ok(bytes)
}

fn read_layout(layout: &Path) -> Result<LayoutImage> {
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(
        &std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
    )
    .with_context(|| format!("parsing {}", index_path.display()))?;
    let entry = index["manifests"]
        .get(0)
        .with_context(|| format!("{} lists no manifest", index_path.display()))?;
    let digest = entry["digest"]
        .as_str()
        .context("index entry without digest")?
        .to_owned();
    let manifest = read_blob(layout, &digest)?;
    let parsed: Value = serde_json::from_slice(&manifest).context("parsing the manifest")?;
    let manifest_type = parsed["mediaType"]
        .as_str()
        .or_else(|| entry["mediaType"].as_str())
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_owned();
    let mut blobs = Vec::new();
    let descriptors =
        std::iter::once(&parsed["config"]).chain(parsed["layers"].as_array().into_iter().flatten());
    for descriptor in descriptors {
        let blob = descriptor["digest"]
            .as_str()
            .context("descriptor without digest")?;
        blobs.push((blob.to_owned(), read_blob(layout, blob)?));
    }
    let tag = entry["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .and_then(tag_of_reference);
    Ok(LayoutImage {
        manifest,
        manifest_type,
        digest,
        tag,
        blobs,
    })
}

/// The tag of `name[:tag]`, or the whole value when it is a bare tag (as the OCI layout spec
/// allows for `ref.name`).
fn tag_of_reference(reference: &str) -> Option<String> {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.rsplit_once(':') {
        Some((_, tag)) => Some(tag.to_owned()),
        None if !reference.contains('/') => Some(reference.to_owned()),
        None => None,
    }
}

/// Pushes the image in `layout` as `args` say.
pub async fn push(args: &PushArgs, layout: &Path) -> Result<Pushed> {
    let repository = args
        .repository
        .as_deref()
        .context("no repository to push to: pass --repository")?;
    let image = read_layout(layout)?;
    let tag = args
        .tag
        .clone()
        .or_else(|| image.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let ecr_host = args
        .registry
        .as_deref()
        .and_then(|r| ecr_region(&host_of(r)));
    let (registry, auth) = if args.ecr || ecr_host.is_some() {
        let login = ecr_login(repository, ecr_host.flatten().or(args.region.clone())).await?;
        let registry = args.registry.clone().unwrap_or(login.proxy_endpoint);
        (registry, Auth::Fixed(format!("Basic {}", login.token)))
    } else {
        let registry = args
            .registry
            .clone()
            .context("no registry: pass --registry <url> (or --ecr)")?;
        let creds = docker_credentials(&host_of(&registry));
        (registry, Auth::Docker(creds))
    };
    let base = registry_url(&registry, args.insecure)?;
    let mut client = Registry::new(base, repository, auth)?;
    client.authenticate().await?;
    let mut uploaded = 0;
    let mut skipped = 0;
    for (digest, bytes) in &image.blobs {
        if client.push_blob(digest, bytes).await? {
            uploaded += 1;
        } else {
            skipped += 1;
        }
    }
    client
        .put_manifest(&tag, &image.manifest_type, &image.manifest, &image.digest)
        .await?;
    let host = client.host();
    Ok(Pushed {
        reference: format!("{host}/{repository}:{tag}"),
        by_digest: format!("{host}/{repository}@{}", image.digest),
        digest: image.digest,
        uploaded,
        skipped,
    })
}

/// The host[:port] of a registry given as URL or bare host.
fn host_of(registry: &str) -> String {
    let rest = registry
        .split_once("://")
        .map_or(registry, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// `Some(region)` when `host` is an ECR registry (`<account>.dkr.ecr.<region>.amazonaws.com`),
/// with the region when it can be read.
fn ecr_region(host: &str) -> Option<Option<String>> {
    let host = host.split(':').next().unwrap_or(host);
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, region) = rest
        .split_once(".dkr.ecr.")
        .or_else(|| rest.split_once(".dkr-ecr."))?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((!region.is_empty()).then(|| region.to_owned()))
}

fn is_loopback(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The registry's base URL: https, except plain http for loopback hosts (or `--insecure`).
fn registry_url(registry: &str, insecure: bool) -> Result<Url> {
    let with_scheme = if registry.contains("://") {
        registry.to_owned()
    } else if is_loopback(&host_of(registry)) {
        format!("http://{registry}")
    } else {
        format!("https://{registry}")
    };
    let url = Url::parse(&with_scheme).with_context(|| format!("registry {registry:?}"))?;
    match url.scheme() {
        "https" => {}
        "http" if insecure || is_loopback(&host_of(&with_scheme)) => {}
        "http" => bail!("refusing plain HTTP to {registry} (not loopback); pass --insecure"),
        other => bail!("registry scheme {other:?} is not http or https"),
    }
    Ok(url)
}

/// Registry credentials.
enum Auth {
    /// A ready `Authorization` value (the ECR token).
    Fixed(String),
    /// user and password from the docker config, if any; used as the registry challenges.
    Docker(Option<(String, String)>),
}

/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) credentials for `host`.
fn docker_credentials(host: &str) -> Option<(String, String)> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))?;
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).ok()?).ok()?;
    credentials_from_config(&config, host)
}

fn credentials_from_config(config: &Value, host: &str) -> Option<(String, String)> {
    let auths = config["auths"].as_object()?;
    let entry = auths
        .iter()
        .find(|(key, _)| host_of(key) == host)
        .map(|(_, v)| v)?;
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = String::from_utf8(BASE64.decode(auth).ok()?).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        return Some((user.to_owned(), pass.to_owned()));
    }
    Some((
        entry["username"].as_str()?.to_owned(),
        entry["password"].as_str()?.to_owned(),
    ))
}

/// Parses a `WWW-Authenticate` challenge: scheme and its parameters.
fn parse_challenge(value: &str) -> (String, Vec<(String, String)>) {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (val, after) = if let Some(quoted) = after.strip_prefix('"') {
            quoted.split_once('"').unwrap_or((quoted, ""))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        params.push((key, val.to_owned()));
        rest = after.trim_start_matches([',', ' ']);
    }
    (scheme.to_ascii_lowercase(), params)
}

/// An OCI distribution API client for one repository.
struct Registry {
    base: Url,
    repository: String,
    http: reqwest::Client,
    auth: Auth,
    authorization: Option<String>,
}

/// Attempts per request (the first one included).
const ATTEMPTS: u32 = 5;

fn transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

impl Registry {
    fn new(base: Url, repository: &str, auth: Auth) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("klue-xtask/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let authorization = match &auth {
            Auth::Fixed(value) => Some(value.clone()),
            Auth::Docker(_) => None,
        };
        Ok(Registry {
            base,
            repository: repository.to_owned(),
            http,
            auth,
            authorization,
        })
    }

    fn host(&self) -> String {
        match (self.base.host_str(), self.base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => self.base.to_string(),
        }
    }

    fn url(&self, path: &str) -> Result<Url> {
        Ok(self.base.join(&format!("/v2/{}/{path}", self.repository))?)
    }

    /// Sends a request built by `build`, retrying transient failures with backoff.
    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            let mut request = build();
            if let Some(value) = &self.authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let error = match request.send().await {
                Ok(response) if !transient(response.status()) => return Ok(response),
                Ok(response) => anyhow!("{what}: HTTP {}", response.status()),
                Err(error) if error.is_connect() || error.is_timeout() || error.is_request() => {
                    anyhow!("{what}: {error}")
                }
                Err(error) => return Err(anyhow!(error).context(what.to_owned())),
            };
            if attempt >= ATTEMPTS {
                return Err(error.context(format!("giving up after {ATTEMPTS} attempts")));
            }
            eprintln!("retrying after a transient failure: {error:#}");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    /// Pings `/v2/` and, when the registry challenges, sets up Basic or Bearer authorization.
    async fn authenticate(&mut self) -> Result<()> {
        let ping = self.base.join("/v2/")?;
        let response = self
            .send("GET /v2/", || self.http.get(ping.clone()))
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(());
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let creds = match &self.auth {
            Auth::Docker(creds) => creds.clone(),
            Auth::Fixed(_) => bail!("{} refused the ECR token (HTTP 401)", self.host()),
        };
        let (scheme, params) = parse_challenge(&challenge);
        let basic = creds
            .as_ref()
            .map(|(user, pass)| format!("Basic {}", BASE64.encode(format!("{user}:{pass}"))));
        match scheme.as_str() {
            "basic" => {
                self.authorization = Some(basic.with_context(|| {
                    format!("{} asks for credentials: docker login (or add them to ~/.docker/config.json)", self.host())
                })?);
            }
            "bearer" => {
                let param = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let realm = param("realm").context("Bearer challenge without realm")?;
                let mut url =
                    Url::parse(&realm).with_context(|| format!("token realm {realm:?}"))?;
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = param("service") {
                        query.append_pair("service", &service);
                    }
                    query.append_pair(
                        "scope",
                        &format!("repository:{}:pull,push", self.repository),
                    );
                }
                let mut request = self.http.get(url);
                if let Some(basic) = &basic {
                    request = request.header(header::AUTHORIZATION, basic);
                }
                let response = request.send().await.context("fetching a registry token")?;
                if !response.status().is_success() {
                    bail!(
                        "the token service {realm} answered HTTP {}",
                        response.status()
                    );
                }
                let body: Value = response
                    .json()
                    .await
                    .context("parsing the registry token")?;
                let token = body["token"]
                    .as_str()
                    .or_else(|| body["access_token"].as_str())
                    .context("the token service answered no token")?;
                self.authorization = Some(format!("Bearer {token}"));
            }
            other => bail!(
                "{} asks for unsupported authentication {other:?}",
                self.host()
            ),
        }
        Ok(())
    }

    /// Uploads a blob unless present; returns whether it uploaded.
    async fn push_blob(&self, digest: &str, bytes: &[u8]) -> Result<bool> {
        let head = self.url(&format!("blobs/{digest}"))?;
        let response = self
            .send(&format!("HEAD blob {digest}"), || {
                self.http.head(head.clone())
            })
            .await?;
        if response.status().is_success() {
            return Ok(false);
        }
        let start = self.url("blobs/uploads/")?;
        let mut attempt = 1;
        loop {
            match self.upload(&start, digest, bytes).await {
                Ok(()) => return Ok(true),
                Err(error) if attempt < ATTEMPTS => {
                    eprintln!("retrying the upload of {digest}: {error:#}");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn upload(&self, start: &Url, digest: &str, bytes: &[u8]) -> Result<()> {
        let response = self
            .send("POST blob upload", || {
                self.http
                    .request(Method::POST, start.clone())
                    .header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            bail!(
                "starting the upload of {digest}: HTTP {}: {}",
                response.status(),
                body_text(response).await
            );
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("the registry gave no upload Location")?;
        let mut url = self
            .base
            .join(location)
            .with_context(|| format!("upload location {location:?}"))?;
        url.query_pairs_mut().append_pair("digest", digest);
        let body = bytes::Bytes::copy_from_slice(bytes);
        let response = self
            .send(&format!("PUT blob {digest}"), || {
                self.http
                    .put(url.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            bail!(
                "uploading {digest}: HTTP {}: {}",
                response.status(),
                body_text(response).await
            );
        }
        Ok(())
    }

    async fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<()> {
        let url = self.url(&format!("manifests/{tag}"))?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        let response = self
            .send("PUT manifest", || {
                self.http
                    .put(url.clone())
                    .header(header::CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let status = response.status();
        if status != StatusCode::CREATED && status != StatusCode::OK {
            bail!(
                "PUT manifest {tag}: HTTP {status}: {}",
                body_text(response).await
            );
        }
        if let Some(answered) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && answered != digest
        {
            bail!("the registry stored the manifest as {answered}, expected {digest}");
        }
        Ok(())
    }
}

async fn body_text(response: reqwest::Response) -> String {
    response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect()
}

/// What ECR gave: the registry endpoint and the Basic token.
struct EcrLogin {
    proxy_endpoint: String,
    token: String,
}

/// Creates the repository if missing and gets an authorization token, with the AWS SDK.
async fn ecr_login(repository: &str, region: Option<String>) -> Result<EcrLogin> {
    use klue_deploy::aws_error::from_sdk;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let config = loader.load().await;
    let ecr = aws_sdk_ecr::Client::new(&config);
    match ecr
        .describe_repositories()
        .repository_names(repository)
        .send()
        .await
    {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            ecr.create_repository()
                .repository_name(repository)
                .send()
                .await
                .map_err(|e| anyhow!("{}", from_sdk("ecr:CreateRepository", &e)))?;
            eprintln!("created ECR repository {repository}");
        }
        Err(error) => bail!(
            "{} (repository {repository})",
            from_sdk("ecr:DescribeRepositories", &error)
        ),
    }
    let answer = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| anyhow!("{}", from_sdk("ecr:GetAuthorizationToken", &e)))?;
    let data = answer
        .authorization_data()
        .first()
        .context("ECR GetAuthorizationToken answered no authorization data")?;
    Ok(EcrLogin {
        proxy_endpoint: data
            .proxy_endpoint()
            .context("ECR answered no proxy endpoint")?
            .to_owned(),
        token: data
            .authorization_token()
            .context("ECR answered no token")?
            .to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schemes_follow_loopback() {
        assert_eq!(
            registry_url("127.0.0.1:5000", false).unwrap().as_str(),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            registry_url("localhost:5000", false).unwrap().scheme(),
            "http"
        );
        assert_eq!(registry_url("[::1]:5000", false).unwrap().scheme(), "http");
        assert_eq!(
            registry_url("ghcr.io", false).unwrap().as_str(),
            "https://ghcr.io/"
        );
        assert!(registry_url("http://registry.example:5000", false).is_err());
        assert!(registry_url("http://registry.example:5000", true).is_ok());
    }

    #[test]
    fn ecr_hosts_are_recognized() {
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(Some("eu-west-1".into()))
        );
        assert_eq!(ecr_region("ghcr.io"), None);
        assert_eq!(ecr_region("12345.dkr.ecr.eu-west-1.amazonaws.com"), None);
    }

    #[test]
    fn challenges_parse() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(
            params[0],
            ("realm".into(), "https://auth.example/token".into())
        );
        assert_eq!(params[1], ("service".into(), "registry.example".into()));
        assert_eq!(params[2], ("scope".into(), "repository:a/b:pull".into()));
        assert_eq!(parse_challenge(r#"Basic realm="x""#).0, "basic");
    }

    #[test]
    fn docker_config_credentials() {
        let config = serde_json::json!({"auths": {
            "https://registry.example:5000/v1/": {"auth": BASE64.encode("alice:s3cret")},
            "other.example": {"username": "bob", "password": "pw"}
        }});
        assert_eq!(
            credentials_from_config(&config, "registry.example:5000"),
            Some(("alice".into(), "s3cret".into()))
        );
        assert_eq!(
            credentials_from_config(&config, "other.example"),
            Some(("bob".into(), "pw".into()))
        );
        assert_eq!(credentials_from_config(&config, "nope.example"), None);
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(
            tag_of_reference("localhost/orders:0.1.0").as_deref(),
            Some("0.1.0")
        );
        assert_eq!(tag_of_reference("localhost:5000/klue").as_deref(), None);
        assert_eq!(tag_of_reference("0.1.0").as_deref(), Some("0.1.0"));
    }
}
