//! ListOperations `GET /v3/{project_id}/operations?service_type&resource_type`:
//! the operations of [`cts_model::CATALOG`], grouped by service and resource
//! type in catalog order.

use crate::error::ApiError;
use crate::extract::QueryParams;
use axum::http::Uri;
use axum::Json;
use cts_model::CATALOG;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(crate) struct ListOperationsResponse {
    operations: Vec<OperationGroup>,
}

/// The operations of one resource type of one service.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct OperationGroup {
    service_type: &'static str,
    resource_type: &'static str,
    operation_list: Vec<&'static str>,
}

pub(crate) async fn list_operations(uri: Uri) -> Result<Json<ListOperationsResponse>, ApiError> {
    let params = QueryParams::of(&uri);
    let (service_type, resource_type) = (params.get("service_type")?, params.get("resource_type")?);
    if resource_type.is_some() && service_type.is_none() {
        return Err(ApiError::InvalidParameter {
            name: "service_type".to_owned(),
            reason: "is required when resource_type is given".to_owned(),
        });
    }
    Ok(Json(ListOperationsResponse { operations: grouped(service_type, resource_type) }))
}

fn grouped(service_type: Option<&str>, resource_type: Option<&str>) -> Vec<OperationGroup> {
    let mut groups: Vec<OperationGroup> = Vec::new();
    for operation in CATALOG.filter(service_type, resource_type) {
        let same_group = |group: &&mut OperationGroup| {
            group.service_type == operation.service_type && group.resource_type == operation.resource_type
        };
        match groups.iter_mut().find(same_group) {
            Some(group) => group.operation_list.push(operation.trace_name),
            None => groups.push(OperationGroup {
                service_type: operation.service_type,
                resource_type: operation.resource_type,
                operation_list: vec![operation.trace_name],
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_operation_is_listed_once_in_its_group() {
        let groups = grouped(None, None);
        let listed: usize = groups.iter().map(|group| group.operation_list.len()).sum();
        assert_eq!(listed, CATALOG.all().len());
        for operation in CATALOG.all() {
            let group = groups
                .iter()
                .find(|g| g.service_type == operation.service_type && g.resource_type == operation.resource_type)
                .unwrap();
            assert!(group.operation_list.contains(&operation.trace_name), "{}", operation.trace_name);
        }
        let keys: std::collections::BTreeSet<_> = groups.iter().map(|g| (g.service_type, g.resource_type)).collect();
        assert_eq!(keys.len(), groups.len(), "one group per (service_type, resource_type)");
    }

    #[test]
    fn filters_narrow_the_groups() {
        assert_eq!(
            grouped(Some("marketplace"), Some("Favorites")),
            [OperationGroup {
                service_type: "marketplace",
                resource_type: "Favorites",
                operation_list: vec!["addFavorites", "deleteFavorites", "queryFavorites"],
            }]
        );
        assert_eq!(grouped(Some("marketplace"), None).len(), 7);
        assert!(grouped(Some("OBS"), None).is_empty());
    }
}
