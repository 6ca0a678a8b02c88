//! The canonical JSON (RFC 8785) of a trace in one pass, without building a `serde_json::Value`.
//!
//! A leaf is hashed for every trace the store acknowledges, so this is on the ingest path. The views below list
//! each object's members in JCS order (keys sorted by UTF-16 code units; every key is ASCII, so byte order), and
//! serde_json's compact output is JCS for what a trace holds: strings escaped exactly as JCS escapes them (`\"`,
//! `\\`, `\b \f \n \r \t`, other controls as lowercase `\u00xx`, everything else literal), integers printed as
//! integers, no whitespace. [`crate::canonical_json`] is the general implementation; a property test holds the two
//! equal. Destructuring each record in full means a new field cannot be forgotten here: it stops the build.

use cts_model::{Attributes, BaseUser, SessionContext, Trace, UserInfo};
use serde::Serialize;

/// The canonical JSON of `trace`, as ListTraces serialises it.
pub(crate) fn canonical_trace_json(trace: &Trace) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1024);
    serde_json::to_writer(&mut bytes, &TraceView::of(trace)).expect("a trace serialises");
    bytes
}

#[derive(Serialize)]
struct TraceView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enterprise_project_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location_info: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<&'a str>,
    project_id: &'a str,
    read_only: bool,
    record_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
    resource_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a str>,
    service_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<&'a str>,
    time: i64,
    trace_id: &'a str,
    trace_name: &'a str,
    trace_rating: &'static str,
    trace_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracker_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserView<'a>>,
}

impl<'a> TraceView<'a> {
    fn of(trace: &'a Trace) -> TraceView<'a> {
        let Trace {
            trace_id,
            trace_name,
            trace_rating,
            trace_type,
            service_type,
            resource_type,
            resource_name,
            resource_id,
            project_id,
            resource_account_id,
            read_only,
            tracker_name,
            operation_id,
            source_ip,
            request,
            response,
            code,
            api_version,
            message,
            time,
            record_time,
            request_id,
            location_info,
            endpoint,
            resource_url,
            enterprise_project_id,
            user,
        } = trace;
        TraceView {
            api_version: api_version.as_deref(),
            code: code.as_deref(),
            endpoint: endpoint.as_deref(),
            enterprise_project_id: enterprise_project_id.as_deref(),
            location_info: location_info.as_deref(),
            message: message.as_deref(),
            operation_id: operation_id.as_deref(),
            project_id,
            read_only: *read_only,
            record_time: *record_time,
            request: request.as_deref(),
            request_id: request_id.as_deref(),
            resource_account_id: resource_account_id.as_deref(),
            resource_id: resource_id.as_deref(),
            resource_name: resource_name.as_deref(),
            resource_type,
            resource_url: resource_url.as_deref(),
            response: response.as_deref(),
            service_type,
            source_ip: source_ip.as_deref(),
            time: *time,
            trace_id,
            trace_name,
            trace_rating: trace_rating.as_str(),
            trace_type: trace_type.as_str(),
            tracker_name: tracker_name.as_deref(),
            user: user.as_ref().map(UserView::of),
        }
    }
}

#[derive(Serialize)]
struct UserView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<DomainView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoked_by: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_is_root_user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_urn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_context: Option<SessionView<'a>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    user_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
}

impl<'a> UserView<'a> {
    fn of(user: &'a UserInfo) -> UserView<'a> {
        let UserInfo {
            id,
            name,
            user_name,
            domain,
            account_id,
            access_key_id,
            principal_urn,
            principal_id,
            principal_is_root_user,
            user_type,
            invoked_by,
            session_context,
        } = user;
        UserView {
            access_key_id: access_key_id.as_deref(),
            account_id: account_id.as_deref(),
            domain: domain
                .as_ref()
                .map(|BaseUser { id, name }| DomainView { id: id.as_deref(), name: name.as_deref() }),
            id: id.as_deref(),
            invoked_by: invoked_by.as_deref(),
            name: name.as_deref(),
            principal_id: principal_id.as_deref(),
            principal_is_root_user: principal_is_root_user.as_deref(),
            principal_urn: principal_urn.as_deref(),
            session_context: session_context.as_ref().map(|SessionContext { attributes }| SessionView {
                attributes: attributes.as_ref().map(|Attributes { created_at, mfa_authenticated }| AttributesView {
                    created_at: created_at.as_deref(),
                    mfa_authenticated: mfa_authenticated.as_deref(),
                }),
            }),
            user_type: user_type.map(|user_type| user_type.as_str()),
            user_name: user_name.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct DomainView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct SessionView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<AttributesView<'a>>,
}

#[derive(Serialize)]
struct AttributesView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_authenticated: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical_json;
    use cts_model::{TraceRating, TraceType, UserType};
    use proptest::prelude::*;

    /// Any text, weighted towards what JCS escapes or sorts differently: controls, quotes, backslashes,
    /// non-ASCII, astral-plane characters.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 _.-]{0,12}",
            "[\\x00-\\x1f\"\\\\/\\x7f]{0,6}",
            "\\PC{0,8}",
            "[é中😀\u{2028}\u{2029}\u{fffd}]{0,4}",
        ]
    }

    fn optional() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    fn user() -> impl Strategy<Value = UserInfo> {
        (
            (optional(), optional(), optional(), proptest::option::of((optional(), optional()))),
            (optional(), optional(), optional(), optional(), optional()),
            (
                proptest::option::of(prop_oneof![Just(UserType::User), Just(UserType::AssumedAgency)]),
                proptest::option::of(proptest::collection::vec(text(), 0..3)),
                proptest::option::of(proptest::option::of((optional(), optional()))),
            ),
        )
            .prop_map(
                |(
                    (id, name, user_name, domain),
                    (account, access_key, urn, principal, root),
                    (kind, invoked, session),
                )| {
                    UserInfo {
                        id,
                        name,
                        user_name,
                        domain: domain.map(|(id, name)| BaseUser { id, name }),
                        account_id: account,
                        access_key_id: access_key,
                        principal_urn: urn,
                        principal_id: principal,
                        principal_is_root_user: root,
                        user_type: kind,
                        invoked_by: invoked,
                        session_context: session.map(|attributes| SessionContext {
                            attributes: attributes
                                .map(|(created_at, mfa_authenticated)| Attributes { created_at, mfa_authenticated }),
                        }),
                    }
                },
            )
    }

    fn trace() -> impl Strategy<Value = Trace> {
        (
            (text(), text(), text(), text(), text(), any::<bool>(), 0..4usize, 0..3usize),
            (optional(), optional(), optional(), optional(), optional(), optional(), optional()),
            (
                optional(),
                optional(),
                optional(),
                optional(),
                optional(),
                optional(),
                optional(),
                optional(),
                optional(),
            ),
            (1i64..=(1 << 53), 1i64..=(1 << 53), proptest::option::of(user())),
        )
            .prop_map(|(required, some, more, (time, record_time, user))| {
                let (trace_id, trace_name, service_type, resource_type, project_id, read_only, kind, rating) = required;
                let (resource_name, resource_id, resource_account_id, tracker_name, operation_id, source_ip, request) =
                    some;
                let (response, code, api_version, message, request_id, location_info, endpoint, url, enterprise) = more;
                Trace {
                    trace_id,
                    trace_name,
                    trace_rating: TraceRating::ALL[rating],
                    trace_type: TraceType::ALL[kind],
                    service_type,
                    resource_type,
                    resource_name,
                    resource_id,
                    project_id,
                    resource_account_id,
                    read_only,
                    tracker_name,
                    operation_id,
                    source_ip,
                    request,
                    response,
                    code,
                    api_version,
                    message,
                    time,
                    record_time,
                    request_id,
                    location_info,
                    endpoint,
                    resource_url: url,
                    enterprise_project_id: enterprise,
                    user,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn one_pass_canonical_json_equals_jcs_of_the_listed_trace(trace in trace()) {
            let listed = serde_json::to_value(&trace).unwrap();
            prop_assert_eq!(canonical_trace_json(&trace), canonical_json(&listed));
        }
    }
}
