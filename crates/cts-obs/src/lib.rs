//! The S3-compatible object store (CTS calls it OBS) that trackers deliver trace files to: one configuration
//! (endpoint, region, credentials, path style), bucket checks and creation signed with AWS SigV4, and an
//! [`object_store::ObjectStore`] per bucket for the objects themselves.
//!
//! Configured once by the operator (`CTS_OBS_ENDPOINT`, `CTS_OBS_REGION`, `CTS_OBS_ACCESS_KEY`,
//! `CTS_OBS_SECRET_KEY`, `CTS_OBS_PATH_STYLE`); the library takes the validated [`ObsConfig`].

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::ObjectStore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a bucket request may take before the store counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the object store is and how to sign requests to it.
#[derive(Clone, PartialEq, Eq)]
pub struct ObsConfig {
    /// `http(s)://host[:port]`, no path.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// `true`: `endpoint/bucket/key` (Garage, MinIO); `false`: `bucket.host/key` (virtual-hosted, as OBS and S3).
    pub path_style: bool,
}

impl fmt::Debug for ObsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObsConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"..")
            .field("path_style", &self.path_style)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ObsError {
    #[error("invalid object store configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid bucket name {0:?}: 3-63 of a-z, 0-9, '-', '.', starting and ending with a letter or digit")]
    InvalidBucketName(String),
    #[error("the object store at {endpoint} is unreachable: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("the object store refused {operation} on bucket {bucket}: HTTP {status} {code}")]
    Refused { operation: &'static str, bucket: String, status: u16, code: String },
    #[error(transparent)]
    Store(#[from] object_store::Error),
}

/// What checking a bucket found, as CheckObsBuckets reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketCheck {
    /// The bucket exists and these credentials may use it.
    Usable,
    /// The store answered with an error: its HTTP status and S3 error code (`NoSuchBucket`, `AccessDenied`, ...).
    Refused { status: u16, code: String },
    /// The store did not answer.
    Unreachable(String),
}

/// A handle on the configured object store; cheap to share.
pub struct Obs {
    config: ObsConfig,
    credential: AwsCredential,
    http: reqwest::Client,
    buckets: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl fmt::Debug for Obs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Obs").field("config", &self.config).finish()
    }
}

impl Obs {
    pub fn new(config: ObsConfig) -> Result<Obs, ObsError> {
        let invalid = |reason: &str| Err(ObsError::InvalidConfig(reason.to_owned()));
        let endpoint = config.endpoint.trim_end_matches('/');
        let Some((scheme, host)) = endpoint.split_once("://") else {
            return invalid("the endpoint must be http(s)://host[:port]");
        };
        if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('/') {
            return invalid("the endpoint must be http(s)://host[:port] without a path");
        }
        if config.region.is_empty() || config.access_key.is_empty() || config.secret_key.is_empty() {
            return invalid("region, access key and secret key are required");
        }
        let config = ObsConfig { endpoint: endpoint.to_owned(), ..config };
        let credential =
            AwsCredential { key_id: config.access_key.clone(), secret_key: config.secret_key.clone(), token: None };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ObsError::InvalidConfig(e.to_string()))?;
        Ok(Obs { config, credential, http, buckets: Mutex::new(HashMap::new()) })
    }

    pub fn config(&self) -> &ObsConfig {
        &self.config
    }

    /// Whether `bucket` exists and these credentials may use it (S3 HeadBucket).
    pub async fn check_bucket(&self, bucket: &str) -> Result<BucketCheck, ObsError> {
        validate_bucket_name(bucket)?;
        match self.send(reqwest::Method::HEAD, bucket, Bytes::new()).await {
            Ok((status, _)) if (200..300).contains(&status) => Ok(BucketCheck::Usable),
            // HEAD answers have no body: name the usual causes by status.
            Ok((status, _)) => Ok(BucketCheck::Refused { status, code: code_for_status(status).to_owned() }),
            Err(ObsError::Unreachable { reason, .. }) => Ok(BucketCheck::Unreachable(reason)),
            Err(other) => Err(other),
        }
    }

    /// Creates `bucket` (S3 CreateBucket, in `location` when given); a bucket these credentials already own is fine.
    pub async fn create_bucket(&self, bucket: &str, location: Option<&str>) -> Result<(), ObsError> {
        validate_bucket_name(bucket)?;
        let body = match location {
            Some(location) => Bytes::from(format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                xml_escape(location)
            )),
            None => Bytes::new(),
        };
        let (status, body) = self.send(reqwest::Method::PUT, bucket, body).await?;
        let code = s3_error_code(&body);
        match (status, code.as_deref()) {
            (200..=299, _) | (409, Some("BucketAlreadyOwnedByYou")) => Ok(()),
            _ => Err(ObsError::Refused {
                operation: "CreateBucket",
                bucket: bucket.to_owned(),
                status,
                code: code.unwrap_or_else(|| code_for_status(status).to_owned()),
            }),
        }
    }

    /// The objects of `bucket`.
    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, ObsError> {
        validate_bucket_name(bucket)?;
        let mut buckets = self.buckets.lock().expect("the bucket cache is never poisoned");
        if let Some(store) = buckets.get(bucket) {
            return Ok(store.clone());
        }
        let store: Arc<dyn ObjectStore> = Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.config.endpoint)
                .with_region(&self.config.region)
                .with_access_key_id(&self.config.access_key)
                .with_secret_access_key(&self.config.secret_key)
                .with_virtual_hosted_style_request(!self.config.path_style)
                .with_allow_http(self.config.endpoint.starts_with("http://"))
                .with_bucket_name(bucket)
                .build()?,
        );
        buckets.insert(bucket.to_owned(), store.clone());
        Ok(store)
    }

    fn bucket_url(&self, bucket: &str) -> String {
        if self.config.path_style {
            format!("{}/{bucket}", self.config.endpoint)
        } else {
            let (scheme, host) = self.config.endpoint.split_once("://").expect("validated in Obs::new");
            format!("{scheme}://{bucket}.{host}/")
        }
    }

    /// Sends a SigV4-signed bucket-level request; returns the status and body.
    async fn send(&self, method: reqwest::Method, bucket: &str, body: Bytes) -> Result<(u16, Bytes), ObsError> {
        let url = self.bucket_url(bucket);
        let digest = Sha256::digest(&body);
        let mut request = HttpRequest::new(HttpRequestBody::from(body.clone()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = url.parse().map_err(|e| ObsError::InvalidConfig(format!("{url}: {e}")))?;
        AwsAuthorizer::new(&self.credential, "s3", &self.config.region).authorize(&mut request, Some(&digest));
        let unreachable =
            |e: reqwest::Error| ObsError::Unreachable { endpoint: self.config.endpoint.clone(), reason: e.to_string() };
        let response = self
            .http
            .request(method, &url)
            .headers(request.headers().clone())
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unreachable)?;
        tracing::debug!(bucket, status, "object store bucket request");
        Ok((status, body))
    }
}

/// S3's bucket naming rules (which OBS shares).
pub fn validate_bucket_name(bucket: &str) -> Result<(), ObsError> {
    let bytes = bucket.as_bytes();
    let valid = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..");
    if valid {
        Ok(())
    } else {
        Err(ObsError::InvalidBucketName(bucket.to_owned()))
    }
}

/// The `<Code>` of an S3 error document.
fn s3_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].to_owned())
}

fn code_for_status(status: u16) -> &'static str {
    match status {
        301 | 307 => "PermanentRedirect",
        400 => "BadRequest",
        403 => "AccessDenied",
        404 => "NoSuchBucket",
        409 => "Conflict",
        500..=599 => "InternalError",
        _ => "Unknown",
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, path_style: bool) -> ObsConfig {
        ObsConfig {
            endpoint: endpoint.into(),
            region: "garage".into(),
            access_key: "AK".into(),
            secret_key: "SK".into(),
            path_style,
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for valid in ["abc", "cts-traces", "a.b-c.1", &"a".repeat(63)] {
            assert!(validate_bucket_name(valid).is_ok(), "{valid}");
        }
        for invalid in ["ab", "Abc", "-abc", "abc-", "a..b", "a_b", "a/b", &"a".repeat(64), ""] {
            assert!(validate_bucket_name(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn bucket_urls_follow_the_addressing_style() {
        let path = Obs::new(config("http://127.0.0.1:3900/", true)).unwrap();
        assert_eq!(path.bucket_url("b1"), "http://127.0.0.1:3900/b1");
        let hosted = Obs::new(config("https://obs.ap-southeast-3.example.com", false)).unwrap();
        assert_eq!(hosted.bucket_url("b1"), "https://b1.obs.ap-southeast-3.example.com/");
    }

    #[test]
    fn invalid_configurations_are_refused() {
        for endpoint in ["127.0.0.1:3900", "ftp://host", "http://", "http://host/path"] {
            assert!(matches!(Obs::new(config(endpoint, true)), Err(ObsError::InvalidConfig(_))), "{endpoint}");
        }
        assert!(Obs::new(ObsConfig { secret_key: String::new(), ..config("http://h", true) }).is_err());
    }

    #[test]
    fn error_codes_are_read_from_s3_error_documents() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>BucketAlreadyExists</Code><Message>m</Message></Error>";
        assert_eq!(s3_error_code(body).as_deref(), Some("BucketAlreadyExists"));
        assert_eq!(s3_error_code(b"not xml"), None);
    }
}
