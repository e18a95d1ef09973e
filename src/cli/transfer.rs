//! `pkgw transfer ID …`: a care transition from the command line, the same single step as
//! `POST /fhir/CarePlan/{id}/$transfer` (see `domain::Transfer`).

use std::sync::Arc;

use clap::Args;

use super::{CliError, DatabaseArgs, open_store};
use crate::config::Settings;
use crate::domain::{
    Channel, ContractId, HsaId, NewContact, NextStep, PhoneHours, PhoneNumber, ResponsibleUnit,
    Transfer, Version,
};
use crate::write::{Caller, Transferred, WriteError, Writer};

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The contract's id.
    #[arg(value_name = "ID")]
    id: String,
    /// The receiving unit's HSA-id.
    #[arg(long, value_name = "HSA-ID")]
    unit: String,
    /// The receiving unit's name, as it goes on the first page.
    #[arg(long, value_name = "NAME")]
    unit_name: String,
    /// The receiving unit's phone number.
    #[arg(long, value_name = "PHONE")]
    unit_phone: String,
    /// The receiving unit's phone hours, e.g. "mon-fri 08:00-10:00" (repeat for more).
    #[arg(long = "unit-hours", value_name = "HOURS")]
    unit_hours: Vec<String>,
    /// The new fast vårdkontakt's name (left out only when the contract records that a
    /// fast vårdkontakt does not apply).
    #[arg(long, value_name = "NAME")]
    contact: Option<String>,
    #[arg(long, value_name = "TITLE")]
    contact_title: Option<String>,
    #[arg(long, value_name = "PHONE")]
    contact_phone: Option<String>,
    /// The new fast läkarkontakt's name, when that changes too.
    #[arg(long, value_name = "NAME")]
    physician: Option<String>,
    /// The handover instant, e.g. 2027-01-20T12:00:00Z. One still ahead is scheduled:
    /// the gateway applies it then.
    #[arg(long, value_name = "INSTANT")]
    at: jiff::Timestamp,
    /// The kind of transition, e.g. hospital-to-primary-care.
    #[arg(long, value_name = "KIND")]
    kind: String,
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// A commitment of the sending unit that moves to the receiving unit (repeat); the
    /// sending unit's others are closed.
    #[arg(long = "move", value_name = "COMMITMENT-ID")]
    moving: Vec<String>,
    /// The receiving unit's next step for the person.
    #[arg(long, value_name = "TEXT")]
    next_step: Option<String>,
    /// The version the transfer is based on; refused if the contract has moved on.
    #[arg(long, value_name = "VERSION")]
    if_match: Option<u64>,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: TransferArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let bad = |what: &str, e: &dyn std::fmt::Display| CliError::Failed(format!("--{what}: {e}"));
    let id = ContractId::parse(&args.id).map_err(|e| bad("id", &e))?;
    let phone = |what: &str, p: &str| PhoneNumber::parse(p).map_err(|e| bad(what, &e));
    let transfer = Transfer {
        to: ResponsibleUnit {
            hsa_id: HsaId::parse(&args.unit).map_err(|e| bad("unit", &e))?,
            name: args.unit_name.clone(),
            phone: phone("unit-phone", &args.unit_phone)?,
            channels: Vec::new(),
            phone_hours: args
                .unit_hours
                .iter()
                .map(|h| PhoneHours::from_words(h).map_err(|e| bad("unit-hours", &e)))
                .collect::<Result<_, _>>()?,
        },
        contact: match &args.contact {
            Some(name) => Some(NewContact {
                name: name.clone(),
                title: args.contact_title.clone(),
                hsa_id: None,
                channels: match &args.contact_phone {
                    Some(p) => vec![Channel::Phone {
                        number: phone("contact-phone", p)?,
                        hours: Vec::new(),
                    }],
                    None => Vec::new(),
                },
            }),
            None => None,
        },
        physician: args.physician.as_ref().map(|name| NewContact {
            name: name.clone(),
            title: None,
            hsa_id: None,
            channels: Vec::new(),
        }),
        at: args.at,
        kind: args.kind.clone(),
        reason: args.reason.clone(),
        moving: args.moving.clone(),
        next_step: args.next_step.as_ref().map(|d| NextStep {
            description: d.clone(),
            due: None,
            on: None,
            who: None,
        }),
    };
    let store = open_store(&settings).await?;
    let if_match = args
        .if_match
        .map(|v| Version::try_from(v).map_err(|e| bad("if-match", &e)))
        .transpose()?;
    // The same write as `$transfer`, by the gateway itself for the operator.
    let writer = Writer::new(store.clone(), Arc::new(settings.profile()?), Arc::default());
    let done = writer
        .transfer(
            &Caller::gateway("cli"),
            &id,
            if_match,
            &transfer,
            jiff::Timestamp::now(),
        )
        .await;
    store.close().await;
    match done {
        Ok(Transferred::Done(record)) => {
            eprintln!(
                "transferred {id} to {} ({}) as version {}",
                transfer.to.name, transfer.to.hsa_id, record.revision.version
            );
            Ok(())
        }
        // A handover ahead: the gateway applies it at its instant (pkgw serve or sync run).
        Ok(Transferred::Scheduled(sid)) => {
            eprintln!(
                "scheduled the transfer of {id} to {} for {} (schedule {sid}); until then the sending unit stays responsible",
                transfer.to.name, transfer.at
            );
            Ok(())
        }
        Err(WriteError::Rules(v, _)) => {
            let why: Vec<String> = v.iter().map(|v| format!("{}: {v}", v.field())).collect();
            Err(CliError::Failed(format!(
                "the transfer cannot be done: {}",
                why.join("; ")
            )))
        }
        Err(WriteError::Stale { named, current, .. }) => Err(CliError::Failed(format!(
            "the contract is at version {current}, not {named}: read it again"
        ))),
        Err(WriteError::Store(e)) => Err(e.into()),
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}
