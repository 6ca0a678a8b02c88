//! The operations cts knows: the 21 KooGallery operations of the seed
//! (service_type `marketplace`), the marketplace's seller and platform operations
//! beyond the seed (service_type `marketplace-provider`), and cts's own (service_type `CTS`).
//! `ListOperations` answers from here, and ingest derives `read_only` from it.

/// One traced operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub service_type: &'static str,
    pub resource_type: &'static str,
    pub trace_name: &'static str,
    /// What the operation does, in the words of the KooGallery user guide.
    pub description: &'static str,
    pub read_only: bool,
}

/// A fixed list of operations with look-ups.
pub struct OperationCatalog {
    operations: &'static [Operation],
}

/// Builds an [`Operation`]; read-only operations are marked `ro`.
macro_rules! op {
    ($service:literal, $resource:literal, $name:literal, $description:literal) => {
        Operation {
            service_type: $service,
            resource_type: $resource,
            trace_name: $name,
            description: $description,
            read_only: false,
        }
    };
    ($service:literal, $resource:literal, $name:literal, $description:literal, ro) => {
        Operation {
            service_type: $service,
            resource_type: $resource,
            trace_name: $name,
            description: $description,
            read_only: true,
        }
    };
}

/// The service type of KooGallery operations.
pub const MARKETPLACE_SERVICE: &str = "marketplace";
/// The service type of the marketplace operations beyond the seed's 21: what sellers do (deliver, accept or reject a
/// requirement, decide an unsubscription, offer privately), what the platform does on its own (payment confirmation,
/// expiry, freezing, release, auto-renewal), and a buyer's appeal. A service type of their own keeps `marketplace`
/// exactly the seed's list.
pub const MARKETPLACE_PROVIDER_SERVICE: &str = "marketplace-provider";
/// The service type of cts's own operations.
pub const CTS_SERVICE: &str = "CTS";

pub static CATALOG: OperationCatalog = OperationCatalog {
    operations: &[
        op!("marketplace", "Order", "createOrder", "Creating an order"),
        op!("marketplace", "Order", "cancelOrder", "Canceling an order"),
        op!("marketplace", "Order", "queryOrderList", "Listing orders", ro),
        op!("marketplace", "Order", "queryOrderDetail", "Querying order details", ro),
        op!("marketplace", "Subscription", "unSubscribeByNegotiation", "Negotiating unsubscription"),
        op!("marketplace", "Resource", "queryResourceDetail", "Querying resource details", ro),
        op!("marketplace", "Resource", "setResourceStrategy", "Changing an expiration policy"),
        op!("marketplace", "Order", "renewOrder", "Renewing a resource"),
        op!("marketplace", "Order", "changeOrder", "Modifying a resource"),
        op!("marketplace", "Resource", "closeResource", "Disabling a resource"),
        op!("marketplace", "Resource", "querySaasResourceInstance", "Querying a SaaS instance", ro),
        op!("marketplace", "Supervision", "submitRequirement", "Submitting a request"),
        op!("marketplace", "Supervision", "confirmAcceptance", "Accepting a product"),
        op!("marketplace", "Supervision", "queryDeliveryProcess", "Querying the delivery progress", ro),
        op!("marketplace", "PrivateOffer", "queryPrivateOfferList", "Listing private offers", ro),
        op!("marketplace", "PrivateOffer", "queryPrivateOfferDetail", "Querying private offer details", ro),
        op!("marketplace", "Favorites", "addFavorites", "Adding a product to favorites"),
        op!("marketplace", "Favorites", "deleteFavorites", "Removing a product from favorites"),
        op!("marketplace", "Favorites", "queryFavorites", "Listing products in favorites", ro),
        op!("marketplace", "AgreementSignRecord", "queryAgreementSignList", "Listing signed agreements", ro),
        op!("marketplace", "AgreementSignRecord", "queryAgreementSignDetail", "Querying agreement details", ro),
        op!("marketplace-provider", "Order", "deliverOrder", "Delivering a purchased product (seller)"),
        op!("marketplace-provider", "Order", "confirmPayment", "Confirming an order's payment (system)"),
        op!("marketplace-provider", "Order", "autoRenewResource", "Renewing a resource automatically (system)"),
        op!("marketplace-provider", "Resource", "expireResource", "A resource expired (system)"),
        op!("marketplace-provider", "Resource", "freezeResource", "Freezing an expired resource (system)"),
        op!("marketplace-provider", "Resource", "releaseResource", "Releasing a resource (system)"),
        op!(
            "marketplace-provider",
            "Subscription",
            "reviewUnsubscription",
            "Agreeing to or refusing an unsubscription (seller)"
        ),
        op!("marketplace-provider", "Supervision", "acceptRequirement", "Accepting a requirement (seller)"),
        op!("marketplace-provider", "Supervision", "rejectRequirement", "Rejecting a requirement (seller)"),
        op!("marketplace-provider", "Supervision", "deliverRequirement", "Delivering a requirement (seller)"),
        op!("marketplace-provider", "Supervision", "appealRequirement", "Appealing a requirement's delivery (buyer)"),
        op!("marketplace-provider", "PrivateOffer", "createPrivateOffer", "Creating a private offer (seller)"),
        op!("CTS", "tracker", "createTracker", "Creating a tracker"),
        op!("CTS", "tracker", "updateTracker", "Modifying a tracker"),
        op!("CTS", "tracker", "deleteTracker", "Deleting a tracker"),
        op!("CTS", "tracker", "listTrackers", "Listing trackers", ro),
        op!("CTS", "notification", "createNotification", "Creating a key event notification"),
        op!("CTS", "notification", "updateNotification", "Modifying a key event notification"),
        op!("CTS", "notification", "deleteNotification", "Deleting a key event notification"),
        op!("CTS", "trace", "listTraces", "Querying traces", ro),
        op!("CTS", "trace", "exportTrace", "Exporting traces", ro),
        op!("CTS", "trace", "queryTraces", "Querying traces with SQL", ro),
        op!("CTS", "session", "consoleLogin", "Signing in to the console"),
        op!("CTS", "session", "consoleLogout", "Signing out of the console"),
    ],
};

impl OperationCatalog {
    pub fn all(&self) -> &'static [Operation] {
        self.operations
    }

    /// The operation of a service with this trace name, if cts knows it.
    pub fn find(&self, service_type: &str, trace_name: &str) -> Option<&'static Operation> {
        self.operations.iter().find(|op| op.service_type == service_type && op.trace_name == trace_name)
    }

    /// The known operations of a service (and resource type), in catalog order.
    pub fn filter<'a>(
        &'a self,
        service_type: Option<&'a str>,
        resource_type: Option<&'a str>,
    ) -> impl Iterator<Item = &'static Operation> + 'a {
        self.operations.iter().filter(move |op| {
            service_type.is_none_or(|s| op.service_type == s) && resource_type.is_none_or(|r| op.resource_type == r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn catalog_holds_the_seed_operations_over_seven_resource_types() {
        let marketplace: Vec<_> = CATALOG.filter(Some(MARKETPLACE_SERVICE), None).collect();
        assert_eq!(marketplace.len(), 21);
        let resource_types: BTreeSet<_> = marketplace.iter().map(|op| op.resource_type).collect();
        assert_eq!(resource_types.len(), 7);
        for op in &marketplace {
            assert_eq!(op.read_only, op.trace_name.starts_with("query"), "{}", op.trace_name);
        }
    }

    #[test]
    fn every_seed_trace_name_is_in_the_catalog() {
        // The seed file is the source of truth; skip quietly only when it is not beside the repo.
        let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/seeds/koogallery-cts-operations.txt");
        let Ok(text) = std::fs::read_to_string(seed) else { return };
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let mut found = 0;
        for pair in lines.windows(2) {
            let (resource_type, trace_name) = (pair[0], pair[1]);
            if let Some(op) = CATALOG.find(MARKETPLACE_SERVICE, trace_name) {
                assert_eq!(op.resource_type, resource_type, "{trace_name}");
                found += 1;
            }
        }
        assert_eq!(found, 21);
    }

    #[test]
    fn provider_operations_change_state_and_do_not_repeat_seed_names() {
        let provider: Vec<_> = CATALOG.filter(Some(MARKETPLACE_PROVIDER_SERVICE), None).collect();
        assert!(!provider.is_empty());
        for op in provider {
            assert!(!op.read_only, "{}", op.trace_name);
            assert!(CATALOG.find(MARKETPLACE_SERVICE, op.trace_name).is_none(), "{}", op.trace_name);
        }
    }

    #[test]
    fn trace_names_are_unique_per_service() {
        let mut seen = BTreeSet::new();
        for op in CATALOG.all() {
            assert!(seen.insert((op.service_type, op.trace_name)), "{}", op.trace_name);
        }
    }
}
