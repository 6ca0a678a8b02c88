//! Identity and access for cts: who may call the API and how callers prove it.
//!
//! - [`sign`]: the Huawei Cloud SDK's `SDK-HMAC-SHA256` request signing and its
//!   strict verification, with no HTTP library types.
//! - [`Iam`]: the domain (account), project, users and access keys kept under
//!   `<data_dir>/iam/`, secret keys sealed under a master key ([`MasterKey`]);
//!   bootstrapped at first start, and [`Iam::authenticate`] turning a signed
//!   request into the [`Principal`] that made it.
//! - console sign-in ([`Iam::set_console_password`], [`Iam::console_sign_in`]): argon2id password hashes in
//!   the state file, or an access key and its secret key; [`ConsoleGrant`], what a session keeps to find
//!   its principal again ([`Iam::console_principal`]) until its credentials change.
//! - [`admin`](Iam::create_domain): creating domains, projects, users, access keys; [`Role`]s and the
//!   [`Action`]s each allows.

mod access;
mod admin;
mod console;
mod identity;
mod secret;
pub mod sign;

pub use access::{Action, Role};
pub use admin::{AccessKeyInfo, NewAccessKey};
pub use console::{ConsoleCredentials, ConsoleGrant, CONSOLE_ACCESS_KEY, MIN_PASSWORD_LEN};
pub use identity::{
    AdminCredentials, AuthError, Bootstrap, BootstrapConflict, Domain, Iam, IamError, Principal, Project, User,
};
pub use secret::{MasterKey, SecretError, MASTER_KEY_ENV};
pub use sign::SignedRequest;
