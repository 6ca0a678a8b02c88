//! Why the marketplace refused an operation, and why the service around it failed.

/// A refusal by the marketplace's rules; each has a stable `KG.xxxx` code (see [`MarketError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketError {
    #[error("{0}")]
    Invalid(String),
    /// Also what a caller gets for another account's record: existence is not revealed.
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("order {0} is paid; only an unpaid order can be canceled")]
    OrderAlreadyPaid(String),
    #[error("order {order_id} is {status}; {action}")]
    OrderState { order_id: String, status: String, action: &'static str },
    #[error("resource {resource_id} is {status}; {action}")]
    ResourceState { resource_id: String, status: String, action: &'static str },
    #[error("the instance of resource {0} has not been delivered yet")]
    InstanceNotDelivered(String),
    #[error("the plan is already {0}")]
    SamePlan(String),
    #[error("the guarantee period of resource {resource_id} ended at {ended_at}; negotiated unsubscription is no longer possible")]
    GuaranteePeriodOver { resource_id: String, ended_at: String },
    #[error("the refund must be more than 0 and at most the {paid_cents} cents paid")]
    RefundOutOfRange { paid_cents: i64 },
    #[error("resource {0} already has an unsubscription waiting for the seller")]
    UnsubscriptionPending(String),
    #[error("unsubscription {0} has already been decided")]
    UnsubscriptionDecided(String),
    #[error("requirement {requirement_id} is {status}; {action}")]
    RequirementState { requirement_id: String, status: String, action: &'static str },
    #[error("requirement {0} can be appealed only after 3 rejected deliveries or 5 idle days")]
    AppealTooEarly(String),
    #[error("private offer {0} has expired")]
    OfferExpired(String),
}

impl MarketError {
    /// The stable error code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            MarketError::Invalid(_) => "KG.0001",
            MarketError::Forbidden(_) => "KG.0003",
            MarketError::NotFound { .. } => "KG.0004",
            MarketError::AlreadyExists(_) => "KG.0005",
            MarketError::OrderAlreadyPaid(_) => "KG.1001",
            MarketError::OrderState { .. } => "KG.1002",
            MarketError::ResourceState { .. } => "KG.1101",
            MarketError::InstanceNotDelivered(_) => "KG.1102",
            MarketError::SamePlan(_) => "KG.1103",
            MarketError::GuaranteePeriodOver { .. } => "KG.1201",
            MarketError::RefundOutOfRange { .. } => "KG.1202",
            MarketError::UnsubscriptionPending(_) => "KG.1203",
            MarketError::UnsubscriptionDecided(_) => "KG.1204",
            MarketError::RequirementState { .. } => "KG.1301",
            MarketError::AppealTooEarly(_) => "KG.1302",
            MarketError::OfferExpired(_) => "KG.1401",
        }
    }

    pub(crate) fn not_found(kind: &'static str, id: &str) -> MarketError {
        MarketError::NotFound { kind, id: id.to_owned() }
    }
}

/// What the persistent state can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("journal I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("an injected fault (the fault hook)")]
    InjectedFault,
    #[error("the state in {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
}

/// What an operation on the service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Market(#[from] MarketError),
    #[error("authentication failed: {0}")]
    Unauthenticated(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
