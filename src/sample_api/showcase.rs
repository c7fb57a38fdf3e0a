//! The fixed records the demo and tests name: each exists to show one rule at work.
//!
//! Written out rather than generated so what each shows cannot drift with the PRNG; only their
//! dates move with `today` (a "current" marker must stay current whatever day the demo runs)
//! and their addresses come from the generated properties P-0001 to P-0004.

use super::generate::phone;
use super::{
    Address, Appointment, CautionMarker, Consent, Date, Health, Job, JobStatus, Need, Priority,
    Property, Slot, Tenancy, TenancyStatus, Tenant, FORMER_TENANT, JOB_ACME_COMPLETED,
    JOB_ACME_SCHEDULED, JOB_BRIGHTFIX_SAME_TENANT, JOB_NO_LONE_WORKING, MARKER_EXPIRED,
    MARKER_INFORMED_CURRENT, MARKER_NOT_INFORMED, TENANT_NO_LONE_WORKING,
    TENANT_RESEARCH_OBJECTION, TENANT_WITH_MARKERS,
};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn need(code: &str, description: &str) -> Need {
    Need {
        code: code.to_owned(),
        description: description.to_owned(),
    }
}

fn address_of(properties: &[Property], index: usize) -> (String, Address) {
    properties.get(index).map_or_else(
        || {
            (
                format!("P-{:04}", index + 1),
                Address {
                    line1: String::new(),
                    town: String::new(),
                    postcode: String::new(),
                },
            )
        },
        |p| (p.id.clone(), p.address.clone()),
    )
}

/// T-0001 to T-0004, living at (or, for T-0003, having left) P-0001 to P-0004.
pub(super) fn tenants(today: Date, properties: &[Property]) -> Vec<Tenant> {
    let current = |years: i64| Tenancy {
        start: today.add_days(-365 * years),
        end: None,
        status: TenancyStatus::Current,
    };
    let no_health = || Health {
        conditions: Vec::new(),
        support_needs: Vec::new(),
    };
    let consenting = Consent {
        research: true,
        marketing: false,
    };

    let (property_id, address) = address_of(properties, 0);
    let with_markers = Tenant {
        id: TENANT_WITH_MARKERS.to_owned(),
        name: "Joan Fenwick".to_owned(),
        date_of_birth: today.add_days(-(64 * 365 + 100)),
        phone: phone(1),
        email: Some("joan.fenwick1@example.org".to_owned()),
        address,
        property_id,
        tenancy: current(12),
        forwarding_address: None,
        ni_number: "QQ 12 34 56 A".to_owned(),
        benefits: strings(&["Universal Credit", "Personal Independence Payment"]),
        arrears_pence: 143_217,
        health: Health {
            conditions: strings(&["type 2 diabetes", "COPD"]),
            support_needs: strings(&["needs time to reach the door"]),
        },
        access_needs: vec![
            need("WHEELCHAIR", "Wheelchair user: step-free access needed"),
            need("HOH", "Hard of hearing: text, don't call"),
        ],
        communication_needs: vec![need("TEXT-ONLY", "Contact by text message only")],
        no_lone_working: false,
        caution_markers: vec![
            CautionMarker {
                id: MARKER_INFORMED_CURRENT.to_owned(),
                category: "verbal abuse".to_owned(),
                instruction: "attend in pairs".to_owned(),
                tenant_informed: true,
                applied: today.add_days(-120),
                review_by: today.add_days(245),
            },
            CautionMarker {
                id: MARKER_NOT_INFORMED.to_owned(),
                category: "aggressive dog".to_owned(),
                instruction: "ask for the dog to be secured before entering".to_owned(),
                tenant_informed: false,
                applied: today.add_days(-20),
                review_by: today.add_days(345),
            },
            CautionMarker {
                id: MARKER_EXPIRED.to_owned(),
                category: "threatening behaviour".to_owned(),
                instruction: "call the office before attending".to_owned(),
                tenant_informed: true,
                applied: today.add_days(-800),
                review_by: today.add_days(-70),
            },
        ],
        sharing_restrictions: Vec::new(),
        consent: consenting.clone(),
        household: 2,
    };

    let (property_id, address) = address_of(properties, 1);
    let research_objection = Tenant {
        id: TENANT_RESEARCH_OBJECTION.to_owned(),
        name: "Priya Lambert".to_owned(),
        date_of_birth: today.add_days(-(38 * 365 + 41)),
        phone: phone(2),
        email: Some("priya.lambert2@example.net".to_owned()),
        address,
        property_id,
        tenancy: current(4),
        forwarding_address: None,
        ni_number: "QQ 23 45 67 B".to_owned(),
        benefits: Vec::new(),
        arrears_pence: 0,
        health: no_health(),
        access_needs: Vec::new(),
        communication_needs: Vec::new(),
        no_lone_working: false,
        caution_markers: Vec::new(),
        sharing_restrictions: strings(&["research"]),
        consent: Consent {
            research: false,
            marketing: false,
        },
        household: 3,
    };

    let (property_id, address) = address_of(properties, 2);
    let former = Tenant {
        id: FORMER_TENANT.to_owned(),
        name: "Darren Whitaker".to_owned(),
        date_of_birth: today.add_days(-(45 * 365 + 200)),
        phone: phone(3),
        email: Some("darren.whitaker3@example.org".to_owned()),
        address,
        property_id,
        tenancy: Tenancy {
            start: today.add_days(-2400),
            end: Some(today.add_days(-200)),
            status: TenancyStatus::Former,
        },
        forwarding_address: Some(Address {
            line1: "147 Teasel Way".to_owned(),
            town: "Waddington".to_owned(),
            postcode: "LN5 9QZ".to_owned(),
        }),
        ni_number: "QQ 34 56 78 C".to_owned(),
        benefits: strings(&["Housing Benefit"]),
        arrears_pence: 61_850,
        health: Health {
            conditions: strings(&["depression"]),
            support_needs: Vec::new(),
        },
        access_needs: Vec::new(),
        communication_needs: Vec::new(),
        no_lone_working: false,
        caution_markers: Vec::new(),
        sharing_restrictions: Vec::new(),
        consent: consenting.clone(),
        household: 1,
    };

    let (property_id, address) = address_of(properties, 3);
    let no_lone_working = Tenant {
        id: TENANT_NO_LONE_WORKING.to_owned(),
        name: "Marek Nowak".to_owned(),
        date_of_birth: today.add_days(-(52 * 365 + 12)),
        phone: phone(4),
        email: None,
        address,
        property_id,
        tenancy: current(7),
        forwarding_address: None,
        ni_number: "QQ 45 67 89 D".to_owned(),
        benefits: strings(&["Employment and Support Allowance"]),
        arrears_pence: 9_040,
        health: Health {
            conditions: strings(&["epilepsy"]),
            support_needs: strings(&["support worker present at visits"]),
        },
        access_needs: vec![need("INTERP-PL", "Interpreter needed: Polish")],
        communication_needs: vec![
            need("NO-EMAIL", "Does not use email: post or phone"),
            need("AFTER-10", "Do not call before 10am"),
        ],
        no_lone_working: true,
        caution_markers: Vec::new(),
        sharing_restrictions: Vec::new(),
        consent: consenting,
        household: 1,
    };

    vec![with_markers, research_objection, former, no_lone_working]
}

/// J-0001 to J-0004.
pub(super) fn jobs(today: Date) -> Vec<Job> {
    let job = |id: &str,
               status: JobStatus,
               description: &str,
               reported: i64,
               appointment: Option<(i64, Slot)>,
               contractor: &str,
               property: &str,
               tenant: &str,
               access: &str,
               notes: &str| Job {
        id: id.to_owned(),
        status,
        priority: Priority::Urgent,
        description: description.to_owned(),
        reported: today.add_days(reported),
        appointment: appointment.map(|(days, slot)| Appointment {
            date: today.add_days(days),
            slot,
        }),
        contractor_id: contractor.to_owned(),
        property_id: property.to_owned(),
        tenant_id: tenant.to_owned(),
        access_notes: access.to_owned(),
        internal_notes: notes.to_owned(),
    };
    vec![
        job(
            JOB_ACME_SCHEDULED,
            JobStatus::Scheduled,
            "Boiler not heating water",
            -2,
            Some((3, Slot::Am)),
            "acme-repairs",
            "P-0001",
            TENANT_WITH_MARKERS,
            "Wheelchair ramp at the side door. Her son Tom lets you in: 07700 900555 or tom.fenwick@example.org",
            "Tenant chased twice by phone; consider recharge for last call-out",
        ),
        job(
            JOB_BRIGHTFIX_SAME_TENANT,
            JobStatus::Scheduled,
            "Damp and mould in bathroom",
            -9,
            Some((5, Slot::Pm)),
            "brightfix",
            "P-0001",
            TENANT_WITH_MARKERS,
            "Call before attending",
            "Linked to damp survey",
        ),
        job(
            JOB_ACME_COMPLETED,
            JobStatus::Completed,
            "Kitchen tap dripping",
            -60,
            Some((-52, Slot::Am)),
            "acme-repairs",
            "P-0001",
            TENANT_WITH_MARKERS,
            "Call before attending",
            "Closed on first visit",
        ),
        job(
            JOB_NO_LONE_WORKING,
            JobStatus::Scheduled,
            "No heating in any room",
            -1,
            Some((1, Slot::Pm)),
            "northgate-gas",
            "P-0004",
            TENANT_NO_LONE_WORKING,
            "Support worker arranges access: 01632 960123",
            "Out of hours call: tenant's support worker arranged access",
        ),
    ]
}
