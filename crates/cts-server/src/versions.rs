//! The API version documents, unsigned as Huawei Cloud services serve them: `GET /` lists the
//! versions (`{"versions":[...]}`), `GET /v3` describes one (`{"version":{...}}`). cts serves one
//! version, v3, the current one. Links are relative to the server, which may sit behind a proxy.

use axum::Json;
use serde::Serialize;

/// When the v3 API cts serves last changed.
const V3_UPDATED: &str = "2026-11-24T00:00:00Z";

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Version {
    id: &'static str,
    links: Vec<Link>,
    /// Microversions are not used: empty, as Huawei answers for APIs without them.
    min_version: &'static str,
    status: &'static str,
    updated: &'static str,
    version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct Link {
    href: &'static str,
    rel: &'static str,
}

fn v3() -> Version {
    Version {
        id: "v3",
        links: vec![Link { href: "/v3/", rel: "self" }],
        min_version: "",
        status: "CURRENT",
        updated: V3_UPDATED,
        version: "",
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Versions {
    versions: Vec<Version>,
}

#[derive(Debug, Serialize)]
pub(crate) struct OneVersion {
    version: Version,
}

pub(crate) async fn list_versions() -> Json<Versions> {
    Json(Versions { versions: vec![v3()] })
}

pub(crate) async fn show_v3() -> Json<OneVersion> {
    Json(OneVersion { version: v3() })
}
