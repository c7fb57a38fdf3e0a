//! A sample housing management API with invented data, for `need-to-know demo` and the tests.
//!
//! The gateway is only worth showing against an upstream that over-shares the way a real
//! housing management system does: a repair job embeds the whole tenant record, with health,
//! benefits, arrears and caution markers. This module is that upstream, built into the binary
//! so a demo needs nothing else running.
//!
//! The data model follows the housing provider's two privacy notices: contact details and
//! access and communication needs (shared with repairs contractors), vulnerability indicators
//! and caution markers (shared with contractors, the tenant informed of each and of how long it
//! applies), "no lone working" (shared with out-of-hours services), former tenants' forwarding
//! addresses and tenancy dates (asked for by utility companies and debt agents), objections to
//! sharing and withdrawn consent (research), health and support needs, benefits and arrears.
//!
//! Every record is invented, and built so it cannot be mistaken for a real one: names combined
//! at random from fixed lists, phone numbers in Ofcom's drama range (07700 900000 to 900999),
//! emails at the reserved `example.org`/`example.net`, NI numbers with the `QQ` prefix HMRC
//! never issues. Generation is a seeded PRNG over a `today` the caller passes, so the same date
//! gives byte-identical data and the demo script can name records; the showcase records below
//! are fixed so each one demonstrates one rule.
//!
//! Routes (GET, JSON, under the base path given to [`serve`]): `/jobs/{id}`,
//! `/jobs?status=&contractor=&property_id=` (`status` may repeat; `contractor` is the housing
//! system's own contractor code, `contractor_id` the gateway's recipient id), `/tenants/{id}`,
//! `/tenants?postcode_district=LN2&limit=50&offset=0`, `/properties/{id}`, `/properties/{id}/occupants`,
//! `/properties/{id}/alerts`, `/former-tenants/{id}`.
//!
//! Some of it is shaped as real housing APIs send it rather than as a rule writer would wish:
//! contractors named by the housing system's own code, a job's free-text access notes that
//! carry phone numbers and email addresses, and the caution alerts as a second resource
//! whose dates have no time zone (or are written month first) and whose codes are typed with
//! a non-breaking hyphen.

mod date;
mod generate;
mod http;
mod showcase;
mod words;

use std::collections::HashMap;

use serde::{Serialize, Serializer};

pub use date::Date;
pub use http::{bearer_matches, handle, serve};

/// Scheduled job for `acme-repairs` at [`TENANT_WITH_MARKERS`]'s home: the contractor may see
/// the tenant's informed, current caution marker ([`MARKER_INFORMED_CURRENT`]) and nothing of
/// the other two.
pub const JOB_ACME_SCHEDULED: &str = "J-0001";
/// Scheduled job for `brightfix`, same tenant: `acme-repairs` asking for it must be refused,
/// and so must any view of the markers through it.
pub const JOB_BRIGHTFIX_SAME_TENANT: &str = "J-0002";
/// Completed job for `acme-repairs`, same tenant: a rule that limits contractors to live jobs
/// must refuse it, since the reason to know the tenant's details has passed.
pub const JOB_ACME_COMPLETED: &str = "J-0003";
/// Scheduled out-of-hours gas job for `northgate-gas` at [`TENANT_NO_LONE_WORKING`]'s home.
pub const JOB_NO_LONE_WORKING: &str = "J-0004";

/// Current tenant with three caution markers ([`MARKER_INFORMED_CURRENT`],
/// [`MARKER_NOT_INFORMED`], [`MARKER_EXPIRED`]), a wheelchair access need, health conditions,
/// benefits and arrears: everything a contractor must not be sent wholesale.
pub const TENANT_WITH_MARKERS: &str = "T-0001";
/// Current tenant who objected to research (`sharing_restrictions: ["research"]`,
/// `consent.research: false`): a research company must not receive them in any list.
pub const TENANT_RESEARCH_OBJECTION: &str = "T-0002";
/// Former tenant with a tenancy end date, a forwarding address and arrears left behind: what a
/// utility company or debt agent may ask for, and no more.
pub const FORMER_TENANT: &str = "T-0003";
/// Current tenant flagged `no_lone_working` with communication needs: what an out-of-hours
/// call-handling service is told.
pub const TENANT_NO_LONE_WORKING: &str = "T-0004";

/// On [`TENANT_WITH_MARKERS`]: informed, review date in the future. Shareable with a contractor.
pub const MARKER_INFORMED_CURRENT: &str = "CM-0001";
/// On [`TENANT_WITH_MARKERS`]: current but the tenant was never told. Not shareable: the notice
/// promises the tenant is informed of each marker.
pub const MARKER_NOT_INFORMED: &str = "CM-0002";
/// On [`TENANT_WITH_MARKERS`]: informed, but its review date has passed. Not shareable: the
/// notice promises a marker applies only "for how long" the tenant was told.
pub const MARKER_EXPIRED: &str = "CM-0003";

/// [`TENANT_WITH_MARKERS`]'s home, and the property of [`JOB_ACME_SCHEDULED`].
pub const PROPERTY_WITH_MARKERS: &str = "P-0001";

/// The contractors jobs are assigned to; `northgate-gas` takes the gas work.
pub const CONTRACTORS: [&str; 3] = ["acme-repairs", "brightfix", "northgate-gas"];

/// The housing system's own code for each of [`CONTRACTORS`], in the same order: what its
/// records name a contractor by, and what the recipients' `contractor_code` attributes hold.
pub const CONTRACTOR_CODES: [&str; 3] = ["ACM", "BFX", "NGS"];

/// Records generated: enough that lists and filters mean something, few enough to read.
pub const TENANT_COUNT: usize = 200;
pub const PROPERTY_COUNT: usize = 150;
pub const JOB_COUNT: usize = 300;

/// Why sample data could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid date {0:?}: expected YYYY-MM-DD")]
    InvalidDate(String),
}

/// A postal address as the housing system stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub line1: String,
    pub town: String,
    pub postcode: String,
}

/// Whether a tenancy is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenancyStatus {
    Current,
    Former,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenancy {
    pub start: Date,
    /// `None` (JSON `null`) while the tenancy is current.
    pub end: Option<Date>,
    pub status: TenancyStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub conditions: Vec<String>,
    pub support_needs: Vec<String>,
}

/// An access or communication need: a code for systems, a description for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    pub code: String,
    pub description: String,
}

/// A caution (warning) marker. The notice says the tenant is told of each marker, when it is
/// applied and for how long, so `tenant_informed` and `review_by` are what a rule keys on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CautionMarker {
    pub id: String,
    pub category: String,
    pub instruction: String,
    pub tenant_informed: bool,
    pub applied: Date,
    /// The end of the period the tenant was told of; in the past means expired. Sent as an
    /// RFC 3339 timestamp at the end of that day, as CEL's `timestamp()` reads it.
    #[serde(serialize_with = "end_of_day")]
    pub review_by: Date,
}

/// `2026-11-14` as `2026-11-14T23:59:59Z`: the marker applies through its review date.
fn end_of_day<S: serde::Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{date}T23:59:59Z"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub research: bool,
    pub marketing: bool,
}

/// A tenant, current or former, with everything the housing system holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub date_of_birth: Date,
    pub phone: String,
    pub email: Option<String>,
    /// The rented home (the one left, for a former tenant).
    pub address: Address,
    pub property_id: String,
    pub tenancy: Tenancy,
    /// Former tenants only.
    pub forwarding_address: Option<Address>,
    pub ni_number: String,
    pub benefits: Vec<String>,
    /// Pence, emitted as pounds (`1432.17`) the way housing systems do.
    #[serde(rename = "arrears", serialize_with = "pounds")]
    pub arrears_pence: u32,
    pub health: Health,
    pub access_needs: Vec<Need>,
    pub communication_needs: Vec<Need>,
    pub no_lone_working: bool,
    pub caution_markers: Vec<CautionMarker>,
    /// Purposes the tenant objected to: `research`, `mailing`, or `all_non_essential`.
    pub sharing_restrictions: Vec<String>,
    pub consent: Consent,
    pub household: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyType {
    Flat,
    House,
    Bungalow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Property {
    pub id: String,
    pub address: Address,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    pub bedrooms: u8,
    /// Current tenants only.
    pub occupant_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Reported,
    Scheduled,
    InProgress,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Emergency,
    Urgent,
    Routine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Slot {
    #[serde(rename = "AM")]
    Am,
    #[serde(rename = "PM")]
    Pm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appointment {
    pub date: Date,
    pub slot: Slot,
}

/// A repair job as stored: it refers to its property and tenant, and [`JobView`] embeds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub status: JobStatus,
    pub priority: Priority,
    pub description: String,
    pub reported: Date,
    pub appointment: Option<Appointment>,
    pub contractor_id: String,
    pub property_id: String,
    pub tenant_id: String,
    /// What the tenant said about getting in, typed by the call centre as free text: it may
    /// hold a relative's phone number or email address.
    pub access_notes: String,
    pub internal_notes: String,
}

/// A job as the API returns it: the property's id and address and the whole tenant record
/// embedded, because that is how housing systems over-share and what the gateway must cut.
#[derive(Debug, Serialize)]
pub struct JobView<'a> {
    pub id: &'a str,
    pub status: JobStatus,
    pub priority: Priority,
    pub description: &'a str,
    pub reported: Date,
    pub appointment: Option<Appointment>,
    pub contractor_id: &'a str,
    /// The housing system's code for the contractor ([`CONTRACTOR_CODES`]).
    pub contractor_code: &'a str,
    pub property: PropertySummary<'a>,
    /// Always present: generation only makes jobs for existing tenants.
    pub tenant: Option<&'a Tenant>,
    pub access_notes: &'a str,
    pub internal_notes: &'a str,
}

/// Which jobs `/jobs` lists: every given filter must match; an empty `statuses` matches any.
#[derive(Debug, Default)]
pub struct JobFilter<'a> {
    /// As in JSON (`in_progress`); any of them.
    pub statuses: Vec<&'a str>,
    /// The gateway's recipient id of the contractor.
    pub contractor_id: Option<&'a str>,
    /// The housing system's code for the contractor.
    pub contractor_code: Option<&'a str>,
    pub property_id: Option<&'a str>,
}

/// A caution alert as the housing system's alerts resource returns it: one of a tenant's
/// [`CautionMarker`]s, held apart from the tenant record and written the way such systems
/// write them (see [`AlertView`]'s fields).
#[derive(Debug, Serialize)]
pub struct AlertView<'a> {
    pub id: &'a str,
    pub person_id: &'a str,
    /// The alert type's code, typed with a non-breaking hyphen (U+2011), as copied from the
    /// housing system's screens: `VA‑1` is not `VA-1` until normalised.
    pub code: String,
    pub category: &'a str,
    pub instruction: &'a str,
    pub tenant_informed: bool,
    /// Local time without a zone: `2026-08-04T00:00:00`.
    pub start_date: String,
    /// The review date, local time without a zone.
    pub end_date: String,
    /// When the alert was last reviewed, month first: `07/11/2026` is 11 July.
    pub last_reviewed: String,
}

/// `/properties/{id}/alerts`: the current occupants' caution alerts.
#[derive(Debug, Serialize)]
pub struct PropertyAlerts<'a> {
    pub property_id: &'a str,
    pub alerts: Vec<AlertView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct PropertySummary<'a> {
    pub id: &'a str,
    /// Always present: generation only makes jobs for existing properties.
    pub address: Option<&'a Address>,
}

/// The whole invented dataset, indexed by id.
#[derive(Debug, Clone)]
pub struct SampleData {
    today: Date,
    tenants: Vec<Tenant>,
    properties: Vec<Property>,
    jobs: Vec<Job>,
    tenant_index: HashMap<String, usize>,
    property_index: HashMap<String, usize>,
    job_index: HashMap<String, usize>,
}

// === impl SampleData ===

impl SampleData {
    /// The dataset as of `today`: every date (births, tenancies, appointments, marker reviews)
    /// is relative to it, so the same `today` gives the same data, and a showcase marker's
    /// review date is in the future whatever day the demo runs.
    pub fn generate(today: Date) -> SampleData {
        let generate::Generated {
            tenants,
            properties,
            jobs,
        } = generate::generate(today);
        let index = |ids: Vec<&String>| -> HashMap<String, usize> {
            ids.into_iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect()
        };
        let tenant_index = index(tenants.iter().map(|t| &t.id).collect());
        let property_index = index(properties.iter().map(|p| &p.id).collect());
        let job_index = index(jobs.iter().map(|j| &j.id).collect());
        SampleData {
            today,
            tenants,
            properties,
            jobs,
            tenant_index,
            property_index,
            job_index,
        }
    }

    /// The reference date the data was generated for.
    pub fn today(&self) -> Date {
        self.today
    }

    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    pub fn properties(&self) -> &[Property] {
        &self.properties
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenant_index.get(id).map(|&i| &self.tenants[i])
    }

    /// A tenant whose tenancy has ended; `None` for a current tenant, as `/former-tenants/{id}`
    /// answers 404 for one.
    pub fn former_tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenant(id)
            .filter(|t| t.tenancy.status == TenancyStatus::Former)
    }

    pub fn property(&self, id: &str) -> Option<&Property> {
        self.property_index.get(id).map(|&i| &self.properties[i])
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.job_index.get(id).map(|&i| &self.jobs[i])
    }

    /// The current tenants of a property; `None` when there is no such property.
    pub fn occupants(&self, property_id: &str) -> Option<Vec<&Tenant>> {
        let property = self.property(property_id)?;
        Some(
            property
                .occupant_ids
                .iter()
                .filter_map(|id| self.tenant(id))
                .collect(),
        )
    }

    /// The jobs `filter` matches, in id order.
    pub fn jobs_matching(&self, filter: &JobFilter<'_>) -> Vec<&Job> {
        self.jobs
            .iter()
            .filter(|j| filter.statuses.is_empty() || filter.statuses.contains(&j.status.as_str()))
            .filter(|j| filter.contractor_id.is_none_or(|c| j.contractor_id == c))
            .filter(|j| {
                filter
                    .contractor_code
                    .is_none_or(|c| contractor_code(&j.contractor_id) == c)
            })
            .filter(|j| filter.property_id.is_none_or(|p| j.property_id == p))
            .collect()
    }

    /// The caution alerts of a property's current occupants; `None` when there is no such
    /// property.
    pub fn alerts(&self, property_id: &str) -> Option<PropertyAlerts<'_>> {
        let property = self.property(property_id)?;
        let alerts = self
            .occupants(property_id)?
            .into_iter()
            .flat_map(|t| t.caution_markers.iter().map(move |m| (t, m)))
            .map(|(tenant, marker)| AlertView {
                id: &marker.id,
                person_id: &tenant.id,
                code: alert_code(&marker.category),
                category: &marker.category,
                instruction: &marker.instruction,
                tenant_informed: marker.tenant_informed,
                start_date: format!("{}T00:00:00", marker.applied),
                end_date: format!("{}T00:00:00", marker.review_by),
                last_reviewed: month_first(marker.applied),
            })
            .collect();
        Some(PropertyAlerts {
            property_id: &property.id,
            alerts,
        })
    }

    /// Tenants whose address's outward code is `district` (`LN2` matches `LN2 1AB`, not
    /// `LN21 1AB`), compared case-insensitively as people type postcodes.
    pub fn tenants_in_district(&self, district: &str) -> Vec<&Tenant> {
        let district = district.trim();
        self.tenants
            .iter()
            .filter(|t| {
                t.address
                    .postcode
                    .split_whitespace()
                    .next()
                    .is_some_and(|outward| outward.eq_ignore_ascii_case(district))
            })
            .collect()
    }

    /// The job as the API returns it, with its property and tenant embedded.
    pub fn job_view<'a>(&'a self, job: &'a Job) -> JobView<'a> {
        let address = self.property(&job.property_id).map(|p| &p.address);
        JobView {
            id: &job.id,
            status: job.status,
            priority: job.priority,
            description: &job.description,
            reported: job.reported,
            appointment: job.appointment,
            contractor_id: &job.contractor_id,
            contractor_code: contractor_code(&job.contractor_id),
            property: PropertySummary {
                id: &job.property_id,
                address,
            },
            tenant: self.tenant(&job.tenant_id),
            access_notes: &job.access_notes,
            internal_notes: &job.internal_notes,
        }
    }
}

// === impl JobStatus ===

impl JobStatus {
    /// The JSON name, for matching `?status=`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Reported => "reported",
            JobStatus::Scheduled => "scheduled",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// The housing system's code for a contractor ([`CONTRACTOR_CODES`]); `""` for one it does
/// not know.
pub fn contractor_code(contractor_id: &str) -> &'static str {
    CONTRACTORS
        .iter()
        .position(|&c| c == contractor_id)
        .map_or("", |i| CONTRACTOR_CODES[i])
}

/// An alert type's code from its category's initials, with the non-breaking hyphen the
/// housing system's screens put in: `verbal abuse` is `VA\u{2011}1`.
fn alert_code(category: &str) -> String {
    let initials: String = category
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    format!("{initials}\u{2011}1")
}

/// `2026-07-11` as `07/11/2026`, month first.
fn month_first(date: Date) -> String {
    let (y, m, d) = date.ymd();
    format!("{m:02}/{d:02}/{y:04}")
}

/// Pence as pounds: `143217` becomes `1432.17`. Dividing an exact integer by 100 gives the
/// double nearest the decimal, which serde_json prints as its shortest form.
fn pounds<S: Serializer>(pence: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(f64::from(*pence) / 100.0)
}

#[cfg(test)]
mod tests;
