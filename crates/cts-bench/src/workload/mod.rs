//! A seeded, realistic KooGallery workload: the 21 marketplace operations of
//! [`cts_model::CATALOG`] in a plausible mix (queries frequent, `createOrder`
//! common, `closeResource` rare), made by ~2,000 users of ~300 accounts over
//! the last 7 days, as JSON objects in the ingest format
//! ([`cts_model::TraceInput`]). The same seed and clock give the same traces,
//! trace ids included, so retries are idempotent and PostgreSQL gets the same
//! ids as cts.

mod calls;
mod population;

pub use population::{ACCOUNTS, USERS};

use calls::CallContext;
use cts_model::{Operation, CATALOG};
use population::{uuid_string, Population, User};
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::Path;

/// The service type of every generated trace.
pub const SERVICE_TYPE: &str = "marketplace";

/// How often each operation happens, relative to the others.
pub const OPERATION_MIX: &[(&str, u32)] = &[
    ("queryOrderList", 150),
    ("queryOrderDetail", 120),
    ("queryResourceDetail", 110),
    ("querySaasResourceInstance", 90),
    ("createOrder", 80),
    ("queryFavorites", 60),
    ("queryPrivateOfferList", 40),
    ("renewOrder", 40),
    ("addFavorites", 35),
    ("queryDeliveryProcess", 35),
    ("queryPrivateOfferDetail", 30),
    ("queryAgreementSignList", 30),
    ("queryAgreementSignDetail", 25),
    ("changeOrder", 25),
    ("cancelOrder", 20),
    ("setResourceStrategy", 20),
    ("deleteFavorites", 15),
    ("submitRequirement", 15),
    ("confirmAcceptance", 10),
    ("unSubscribeByNegotiation", 5),
    ("closeResource", 3),
];

/// The traces' times span the 7 days before the clock, less this margin, so a
/// "last 7 days" query made within the margin still sees every trace.
pub const TIME_MARGIN_MS: i64 = 3_600_000;
const SPAN_MS: i64 = 7 * 86_400_000 - TIME_MARGIN_MS;
/// Traces arrive roughly in time order: each is up to this much late.
const ARRIVAL_JITTER_MS: i64 = 30_000;

/// Share of calls that fail on the caller's side (4xx) and on the service's (5xx).
const CLIENT_ERROR_SHARE: f64 = 0.03;
const SERVER_ERROR_SHARE: f64 = 0.005;
const CLIENT_ERRORS: &[(u16, &str, &str)] = &[
    (400, "MKT.0400", "Invalid request parameter."),
    (401, "MKT.0401", "The token has expired."),
    (403, "MKT.0403", "The user has no permission to perform this operation."),
    (404, "MKT.0404", "The order or resource does not exist."),
    (409, "MKT.0409", "The order status does not allow this operation."),
    (429, "MKT.0429", "Too many requests, try again later."),
];
const SERVER_ERRORS: &[(u16, &str, &str)] = &[
    (500, "MKT.0500", "Internal error of the marketplace service."),
    (502, "MKT.0502", "The billing service did not answer in time."),
    (503, "MKT.0503", "The marketplace service is temporarily unavailable."),
];

/// Generates the traces of one workload, oldest first.
pub struct Generator {
    rng: StdRng,
    population: Population,
    operations: Vec<&'static Operation>,
    mix: WeightedIndex<u32>,
    start_ms: i64,
    count: usize,
    produced: usize,
}

impl Generator {
    /// A workload of `count` traces whose times lie in the 7 days before `now_ms`.
    pub fn new(seed: u64, now_ms: i64, count: usize) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let population = Population::new(&mut rng);
        let operations = OPERATION_MIX
            .iter()
            .map(|(name, _)| CATALOG.find(SERVICE_TYPE, name).expect("mix names are catalog operations"))
            .collect();
        let mix = WeightedIndex::new(OPERATION_MIX.iter().map(|(_, weight)| *weight)).expect("positive weights");
        Generator { rng, population, operations, mix, start_ms: now_ms - SPAN_MS, count, produced: 0 }
    }

    fn trace(&mut self) -> Value {
        let slot = self.start_ms + (self.produced as i128 * SPAN_MS as i128 / self.count.max(1) as i128) as i64;
        let time_ms = slot - self.rng.gen_range(0..ARRIVAL_JITTER_MS);
        let population = &self.population;
        let user = &population.users[population.user_activity.sample(&mut self.rng)];
        let account = &population.accounts[user.account];
        let operation = self.operations[self.mix.sample(&mut self.rng)];
        let call = CallContext { rng: &mut self.rng, population, account, time_ms }.call(operation.trace_name);
        let rng = &mut self.rng;

        let console = user.agency.is_none() && rng.gen_bool(0.65);
        let outcome = rng.gen::<f64>();
        let failure = if outcome < SERVER_ERROR_SHARE {
            SERVER_ERRORS.choose(rng)
        } else if outcome < SERVER_ERROR_SHARE + CLIENT_ERROR_SHARE {
            CLIENT_ERRORS.choose(rng)
        } else {
            None
        };
        let endpoint = if console {
            "https://console-intl.huaweicloud.com/marketplace"
        } else {
            "https://mkt.ap-southeast-3.myhuaweicloud.com"
        };

        let mut trace = Map::new();
        let mut set = |key: &str, value: Value| {
            trace.insert(key.to_owned(), value);
        };
        set("trace_id", json!(uuid_string(rng)));
        set("trace_name", json!(operation.trace_name));
        set("trace_type", json!(if console { "ConsoleAction" } else { "ApiCall" }));
        set("service_type", json!(SERVICE_TYPE));
        set("resource_type", json!(operation.resource_type));
        if let Some(id) = &call.resource_id {
            set("resource_url", json!(format!("{endpoint}/{}/{id}", operation.resource_type.to_lowercase())));
            set("resource_id", json!(id));
        }
        if let Some(name) = call.resource_name {
            set("resource_name", json!(name));
        }
        set("resource_account_id", json!(account.id));
        set("operation_id", json!(operation_id(operation.trace_name)));
        set("source_ip", json!(user.source_ips.choose(rng).unwrap()));
        set("request", json!(call.request.to_string()));
        match failure {
            Some((code, error_code, message)) => {
                set("code", json!(code.to_string()));
                set("response", json!(json!({"error_code": error_code, "error_msg": message}).to_string()));
                set("message", json!(message));
                set("location_info", json!(format!("marketplace/{}", operation.resource_type)));
            }
            None => {
                set("code", json!("200"));
                set("response", json!(call.response.to_string()));
            }
        }
        set("api_version", json!(if console { "v1" } else { "v2" }));
        set("time", json!(time_ms));
        set("request_id", json!(uuid_string(rng)));
        set("endpoint", json!(endpoint));
        set("enterprise_project_id", json!(account.enterprise_projects.choose(rng).unwrap()));
        set("user", user_info(rng, user, &account.id, &account.name, console, time_ms));
        self.produced += 1;
        Value::Object(trace)
    }
}

impl Iterator for Generator {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        (self.produced < self.count).then(|| self.trace())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.produced;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Generator {}

/// `createOrder` -> `CreateOrder`: the API operation behind a trace name.
fn operation_id(trace_name: &str) -> String {
    let mut chars = trace_name.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// The `user` block of a trace: IAM users sign in to the console or call with
/// an access key; agency principals act through an assumed agency.
fn user_info(
    rng: &mut StdRng,
    user: &User,
    account_id: &str,
    account_name: &str,
    console: bool,
    time_ms: i64,
) -> Value {
    let mut info = json!({
        "id": user.id,
        "name": user.name,
        "domain": {"id": account_id, "name": account_name},
        "account_id": account_id,
        "access_key_id": user.access_keys.choose(rng).unwrap(),
        "principal_is_root_user": user.is_root.to_string(),
    });
    match &user.agency {
        Some(agency) => {
            info["type"] = json!("AssumedAgency");
            info["principal_urn"] = json!(format!("sts::{account_id}:assumed-agency:{agency}/{}", user.name));
            info["principal_id"] = json!(format!("{}:{}", user.id, user.name));
            info["invoked_by"] = json!(["service.marketplace"]);
        }
        None => {
            info["type"] = json!("User");
            info["principal_urn"] = json!(format!("iam::{account_id}:user:{}", user.name));
            info["principal_id"] = json!(user.id);
        }
    }
    if console {
        let signed_in = chrono::DateTime::from_timestamp_millis(time_ms - rng.gen_range(60_000..8 * 3_600_000))
            .expect("time in range")
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        info["session_context"] = json!({"attributes": {
            "created_at": signed_in,
            "mfa_authenticated": rng.gen_bool(0.4).to_string(),
        }});
    }
    info
}

/// Writes the workload of (`seed`, `now_ms`, `count`) as JSON Lines, the
/// format `cts import` reads.
pub fn write_json_lines(path: &Path, seed: u64, now_ms: i64, count: usize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for trace in Generator::new(seed, now_ms, count) {
        serde_json::to_writer(&mut out, &trace)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests;
