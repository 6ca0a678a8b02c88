//! The marketplace as a running service: the state behind a lock, made durable by the journal before anything is
//! answered, sessions, the clock, and the platform's own actions reported to cts as `SystemAction` traces.

use crate::clock::Clock;
use crate::error::{MarketError, ServiceError, StorageError};
use crate::journal::Journal;
use crate::market::{Command, Marketplace, Outcome, SystemEvent};
use crate::model::{Account, Plan, Role, User};
use cts_model::{
    Attributes, BaseUser, SessionContext, TraceInput, TraceType, UserInfo, UserType, CATALOG,
    MARKETPLACE_PROVIDER_SERVICE,
};
use cts_reporter::TraceSink;
use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// An authenticated user, as handlers and traces see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
    /// The trace's `user` block.
    pub user: UserInfo,
}

struct Session {
    user_id: String,
    created_at: i64,
}

struct State {
    market: Marketplace,
    journal: Journal,
}

/// The KooGallery service (share it in an `Arc`).
pub struct KooGallery {
    state: Mutex<State>,
    dir: PathBuf,
    faults: Arc<AtomicU32>,
    clock: Clock,
    sink: Arc<dyn TraceSink>,
    sessions: Mutex<HashMap<String, Session>>,
    admin_token: String,
}

impl KooGallery {
    /// Opens the marketplace persisted in `dir` (created when new).
    pub fn open(
        dir: &Path,
        clock: Clock,
        sink: Arc<dyn TraceSink>,
        admin_token: &str,
    ) -> Result<KooGallery, StorageError> {
        let faults = Arc::new(AtomicU32::new(0));
        let (journal, market) = Journal::open(dir, faults.clone())?;
        Ok(KooGallery {
            state: Mutex::new(State { market, journal }),
            dir: dir.to_owned(),
            faults,
            clock,
            sink,
            sessions: Mutex::new(HashMap::new()),
            admin_token: admin_token.to_owned(),
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn is_admin_token(&self, token: &str) -> bool {
        // Constant-time over the token's length.
        token.len() == self.admin_token.len()
            && token.bytes().zip(self.admin_token.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }

    /// Makes the next `count` journal appends fail (the fault hook: each gives an incident).
    pub fn inject_faults(&self, count: u32) {
        self.faults.store(count, Ordering::SeqCst);
    }

    /// Signs a user in by account name, user name and password; answers a session token.
    pub fn login(&self, account: &str, name: &str, password: &str) -> Result<String, ServiceError> {
        let state = self.state.lock();
        let user = state.market.find_user(account, name).ok_or(ServiceError::Unauthenticated("wrong credentials"))?;
        if hash_password(&user.salt, password) != user.password_hash {
            return Err(ServiceError::Unauthenticated("wrong credentials"));
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let session = Session { user_id: user.id.clone(), created_at: self.clock.now_ms() };
        self.sessions.lock().insert(token.clone(), session);
        Ok(token)
    }

    /// The user behind a session token.
    pub fn authenticate(&self, token: &str) -> Result<Caller, ServiceError> {
        let (user_id, created_at) = {
            let sessions = self.sessions.lock();
            let session = sessions.get(token).ok_or(ServiceError::Unauthenticated("unknown or expired token"))?;
            (session.user_id.clone(), session.created_at)
        };
        let state = self.state.lock();
        let user = state.market.user(&user_id).ok_or(ServiceError::Unauthenticated("the user no longer exists"))?;
        let account = state.market.account(&user.account_id).expect("users belong to accounts");
        Ok(Caller { user_id: user.id.clone(), role: user.role, user: user_info(user, account, created_at) })
    }

    /// Runs `command` now for `caller` (`None`: the administrator). Due platform actions run first; a change is
    /// journaled before it is answered.
    pub fn execute(&self, caller: Option<&Caller>, command: &Command) -> Result<Outcome, ServiceError> {
        let mut state = self.state.lock();
        let now = self.clock.now_ms();
        self.run_due(&mut state, now)?;
        let actor = caller.map(|caller| caller.user_id.as_str());
        let outcome = state.market.execute(now, actor, command)?;
        if command.mutates() {
            self.persist(&mut state, now, actor, command)?;
        }
        Ok(outcome)
    }

    /// Runs the platform actions due by now.
    pub fn tick(&self) -> Result<(), ServiceError> {
        let mut state = self.state.lock();
        self.run_due(&mut state, self.clock.now_ms())
    }

    /// Moves a simulated clock forward and runs what became due.
    pub fn advance_clock(&self, ms: i64) -> Result<i64, ServiceError> {
        let now = self.clock.advance(ms).ok_or_else(|| {
            MarketError::Invalid("only a simulated clock can be advanced, by a non-negative step".to_owned())
        })?;
        self.tick()?;
        Ok(now)
    }

    /// Runs [`KooGallery::tick`] every `period` until the returned task is aborted. A simulated clock behind real
    /// time is first moved up to it (never back), so a demo's marketplace lives on in real time after its workload.
    pub fn spawn_ticker(self: &Arc<Self>, period: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            loop {
                interval.tick().await;
                let service = service.clone();
                match tokio::task::spawn_blocking(move || service.catch_up_with_real_time()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::error!(%error, "running the platform's due actions failed"),
                    Err(error) => tracing::error!(%error, "the ticker task failed"),
                }
            }
        })
    }

    fn catch_up_with_real_time(&self) -> Result<(), ServiceError> {
        match self.clock {
            Clock::System => self.tick(),
            Clock::Simulated(_) => self.advance_clock((cts_model::now_ms() - self.clock.now_ms()).max(0)).map(drop),
        }
    }

    pub fn create_account(&self, name: &str) -> Result<Outcome, ServiceError> {
        self.execute(None, &Command::CreateAccount { name: name.to_owned() })
    }

    /// Creates a user; only a salted hash of the password is kept (and journaled).
    pub fn create_user(
        &self,
        account_id: &str,
        name: &str,
        password: &str,
        role: Role,
    ) -> Result<Outcome, ServiceError> {
        if password.len() < 8 {
            return Err(MarketError::Invalid("a password needs at least 8 characters".to_owned()).into());
        }
        let salt = uuid::Uuid::new_v4().simple().to_string();
        let command = Command::CreateUser {
            account_id: account_id.to_owned(),
            name: name.to_owned(),
            role,
            password_hash: hash_password(&salt, password),
            salt,
        };
        self.execute(None, &command)
    }

    pub fn create_product(
        &self,
        seller_account_id: &str,
        name: &str,
        plans: Vec<Plan>,
        guarantee_days: u32,
    ) -> Result<Outcome, ServiceError> {
        let command = Command::CreateProduct {
            seller_account_id: seller_account_id.to_owned(),
            name: name.to_owned(),
            plans,
            guarantee_days,
        };
        self.execute(None, &command)
    }

    /// The products on sale, as JSON (public).
    pub fn products(&self) -> serde_json::Value {
        let state = self.state.lock();
        json!({ "products": state.market.products().collect::<Vec<_>>() })
    }

    fn run_due(&self, state: &mut State, now: i64) -> Result<(), ServiceError> {
        if state.market.next_due_time().is_none_or(|due| due > now) {
            return Ok(());
        }
        let events = state.market.advance_to(now);
        self.persist(state, now, None, &Command::Tick)?;
        for event in events {
            let trace = self.system_trace(&state.market, event);
            self.sink.submit(trace);
        }
        Ok(())
    }

    /// Journals an applied command; when that fails the in-memory state is rebuilt from disk, without it.
    fn persist(&self, state: &mut State, at: i64, actor: Option<&str>, command: &Command) -> Result<(), ServiceError> {
        let State { market, journal } = state;
        let Err(error) = journal.append(at, actor, command, market) else { return Ok(()) };
        tracing::error!(%error, "journaling a marketplace change failed; reloading the last durable state");
        match Journal::open(&self.dir, self.faults.clone()) {
            Ok((journal, market)) => *state = State { market, journal },
            Err(reload) => tracing::error!(error = %reload, "reloading the marketplace state failed"),
        }
        Err(error.into())
    }

    fn system_trace(&self, market: &Marketplace, event: SystemEvent) -> TraceInput {
        let operation =
            CATALOG.find(MARKETPLACE_PROVIDER_SERVICE, event.trace_name).expect("system actions are in the catalog");
        let account_name = market.account(&event.account_id).map(|account| account.name.clone());
        TraceInput {
            trace_id: Some(uuid::Uuid::new_v4().to_string()),
            trace_name: Some(operation.trace_name.to_owned()),
            trace_type: Some(TraceType::SystemAction.as_str().to_owned()),
            service_type: Some(operation.service_type.to_owned()),
            resource_type: Some(operation.resource_type.to_owned()),
            resource_id: Some(event.resource_id.clone()),
            resource_name: Some(event.resource_name),
            resource_account_id: Some(event.account_id.clone()),
            read_only: Some(false),
            request: Some(json!({ "action": event.trace_name, "resource_id": event.resource_id })),
            response: Some(event.details),
            code: Some(json!(200)),
            api_version: Some(crate::api::API_VERSION.to_owned()),
            time: Some(event.at),
            request_id: Some(uuid::Uuid::new_v4().to_string()),
            user: Some(UserInfo {
                id: Some("system".to_owned()),
                name: Some("system".to_owned()),
                domain: Some(BaseUser { id: Some(event.account_id.clone()), name: account_name }),
                account_id: Some(event.account_id),
                ..UserInfo::default()
            }),
            ..TraceInput::default()
        }
    }
}

fn hash_password(salt: &str, password: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{password}").as_bytes()))
}

fn user_info(user: &User, account: &Account, session_created_at: i64) -> UserInfo {
    let created_at = chrono::DateTime::from_timestamp_millis(session_created_at).map(|t| t.to_rfc3339());
    UserInfo {
        id: Some(user.id.clone()),
        name: Some(user.name.clone()),
        user_name: Some(user.name.clone()),
        domain: Some(BaseUser { id: Some(account.id.clone()), name: Some(account.name.clone()) }),
        account_id: Some(account.id.clone()),
        access_key_id: None,
        principal_urn: Some(format!("iam::{}:user:{}", account.id, user.name)),
        principal_id: Some(user.id.clone()),
        principal_is_root_user: Some("false".to_owned()),
        user_type: Some(UserType::User),
        invoked_by: None,
        session_context: Some(SessionContext {
            attributes: Some(Attributes { created_at, mfa_authenticated: Some("false".to_owned()) }),
        }),
    }
}
