//! `cts admin`: domains, projects, users, roles and access keys of a data directory, printed as JSON.
//! A running `cts serve` on the same directory picks the changes up within a second.

use crate::config::RawSettings;
use crate::data_dir::open_iam;
use clap::{Args, Subcommand};
use cts_iam::Role;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    settings: RawSettings,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Accounts.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Projects of an account; traces, trackers and notifications belong to projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Users of an account and their roles (admin, auditor, reporter).
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys (AK/SK) of users in projects; a new secret key is shown once.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    Create { name: String },
    List,
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    Create {
        /// The domain, by id or name.
        #[arg(long)]
        domain: String,
        name: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    Create {
        /// The domain, by id or name.
        #[arg(long)]
        domain: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        name: String,
    },
    List,
    /// Gives a user (by id or unique name) another role.
    SetRole {
        user: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Sets a user's console password (at least 8 characters), read from `CTS_CONSOLE_PASSWORD` or
    /// else the first line of standard input (never from the command line).
    SetPassword {
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    Create {
        /// The user, by id or unique name.
        #[arg(long)]
        user: String,
        /// The project the key works in, by id or unique name.
        #[arg(long)]
        project: String,
    },
    List,
    Delete {
        access_key: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let config = args.settings.resolve()?;
    let iam = open_iam(&config)?;
    match args.command {
        AdminCommand::Domain(DomainCommand::Create { name }) => print(&iam.create_domain(&name)?),
        AdminCommand::Domain(DomainCommand::List) => print(&iam.domains()),
        AdminCommand::Project(ProjectCommand::Create { domain, name }) => print(&iam.create_project(&domain, &name)?),
        AdminCommand::Project(ProjectCommand::List) => print(&iam.projects()),
        AdminCommand::User(UserCommand::Create { domain, role, name }) => {
            print(&iam.create_user(&domain, &name, role)?)
        }
        AdminCommand::User(UserCommand::List) => print(&iam.users()),
        AdminCommand::User(UserCommand::SetRole { user, role }) => print(&iam.set_role(&user, role)?),
        AdminCommand::User(UserCommand::SetPassword { user }) => {
            print(&iam.set_console_password(&user, &console_password()?)?)
        }
        AdminCommand::Key(KeyCommand::Create { user, project }) => print(&iam.create_access_key(&user, &project)?),
        AdminCommand::Key(KeyCommand::List) => print(&iam.access_keys()),
        AdminCommand::Key(KeyCommand::Delete { access_key }) => print(&iam.delete_access_key(&access_key)?),
    }
}

fn print(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The console password to set: `CTS_CONSOLE_PASSWORD`, else the first line of standard input.
fn console_password() -> anyhow::Result<String> {
    if let Some(password) = std::env::var("CTS_CONSOLE_PASSWORD").ok().filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
