//! Reading what a request carries: a JSON body of a given shape, single-valued query parameters.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, Uri};
use cts_iam::sign::parse_query_string;
use serde::de::DeserializeOwned;

/// The body as a `T`: it must be declared JSON, be non-empty and parse.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = non_empty_json(headers, body)?;
    serde_json::from_slice(&body).map_err(|error| ApiError::InvalidBody(format!("the body is invalid: {error}")))
}

/// The raw body of a request that must carry JSON.
pub(crate) fn non_empty_json(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body?;
    if body.is_empty() {
        return Err(ApiError::InvalidBody("the request body is empty".to_owned()));
    }
    Ok(body)
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// The decoded query parameters of a request.
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(crate) fn of(uri: &Uri) -> QueryParams {
        QueryParams(parse_query_string(uri.query().unwrap_or("")))
    }

    /// The value of `name`; an empty value counts as absent, a repeated parameter is an error.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => {
                Err(ApiError::InvalidParameter { name: name.to_owned(), reason: "is given more than once".to_owned() })
            }
            (value, _) => Ok(value.filter(|value| !value.is_empty())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let cases = [
            (Some("application/json"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some("Application/JSON;charset=UTF-8"), true),
            (Some("application/jsonx"), false),
            (Some("text/plain"), false),
            (None, false),
        ];
        for (content_type, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = content_type {
                headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            }
            assert_eq!(is_json(&headers), expected, "{content_type:?}");
        }
    }

    #[test]
    fn query_parameters_are_single_valued_and_empty_means_absent() {
        let params = QueryParams::of(&"/x?a=1&b=&c=2&c=3&d=x%20y".parse().unwrap());
        assert_eq!(params.get("a").unwrap(), Some("1"));
        assert_eq!(params.get("b").unwrap(), None);
        assert_eq!(params.get("missing").unwrap(), None);
        assert_eq!(params.get("d").unwrap(), Some("x y"));
        assert!(params.get("c").is_err());
    }
}
