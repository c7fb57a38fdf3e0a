//! The invented records: a seeded PRNG over fixed word lists.
//!
//! The seed is a constant and the only other input is `today`, so the same date always gives
//! the same data (tests and the demo script can name records) while the data still looks lived
//! in: joint tenancies, former tenants who left before the current one
//! moved in, a spread of job states and a few markers that have lapsed.

use std::collections::{HashMap, HashSet};

use super::showcase;
use super::words::{
    ACCESS_NEEDS, ACCESS_NOTES, BENEFITS, COMMUNICATION_NEEDS, CONDITIONS, FIRST_NAMES,
    INTERNAL_NOTES, INWARD_LETTERS, MARKERS, REPAIRS, STREETS, SUPPORT_NEEDS, SURNAMES, TOWNS,
};
use super::{
    Address, Appointment, CautionMarker, Consent, Date, Health, Job, JobStatus, Need, Priority,
    Property, PropertyType, Slot, Tenancy, TenancyStatus, Tenant, CONTRACTORS, JOB_COUNT,
    PROPERTY_COUNT, TENANT_COUNT,
};

/// Fixed so the data depends on `today` alone.
const SEED: u64 = 0x6e74_6b2d_7361_6d70; // "ntk-samp"

pub(super) struct Generated {
    pub tenants: Vec<Tenant>,
    pub properties: Vec<Property>,
    pub jobs: Vec<Job>,
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to look random; nothing
/// here needs more, and the output must never change between versions of a crate.
pub(super) struct Rng(u64);

// === impl Rng ===

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (modulo bias is irrelevant at these sizes); 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // usize is at most 64 bits on every supported target.
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = usize::try_from(hi - lo + 1).unwrap_or(1);
        lo + i64::try_from(self.below(span)).unwrap_or(0)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A street's fixed postcode: everyone on it shares the district and inward code.
struct Street {
    name: &'static str,
    town: &'static str,
    postcode: String,
}

pub(super) fn generate(today: Date) -> Generated {
    let mut rng = Rng::new(SEED);
    let streets = streets(&mut rng);
    let mut properties = properties(&mut rng, &streets);
    let mut tenants = showcase::tenants(today, &properties);
    let jobs_first = showcase::jobs(today);

    // Latest former tenancy end per property, so a new tenancy starts after it.
    let mut vacated: HashMap<String, Date> = HashMap::new();
    for t in &tenants {
        if let (TenancyStatus::Former, Some(end)) = (t.tenancy.status, t.tenancy.end) {
            vacated.insert(t.property_id.clone(), end);
        } else {
            occupy(&mut properties, &t.property_id, &t.id);
        }
    }

    let first = tenants.len() + 1;
    let former: Vec<usize> = (first..=TENANT_COUNT).filter(|_| rng.chance(15)).collect();
    let current: Vec<usize> = (first..=TENANT_COUNT)
        .filter(|n| !former.contains(n))
        .collect();

    for n in current {
        let index = match properties.iter().position(|p| p.occupant_ids.is_empty()) {
            Some(i) => i,
            // Every home let: the rest are joint tenants.
            None => loop {
                let i = rng.below(properties.len());
                if properties[i].occupant_ids.len() == 1 {
                    break i;
                }
            },
        };
        let property = &properties[index];
        let joint_with = property
            .occupant_ids
            .first()
            .and_then(|id| tenants.iter().find(|t| &t.id == id));
        let start = match (joint_with, vacated.get(&property.id)) {
            (Some(other), _) => other.tenancy.start,
            (None, Some(&end)) => end.add_days(rng.range(7, today.days_since(end).max(8) - 1)),
            (None, None) => today.add_days(-rng.range(30, 9000)),
        };
        let tenancy = Tenancy {
            start,
            end: None,
            status: TenancyStatus::Current,
        };
        let tenant = tenant(&mut rng, n, today, property, tenancy, None);
        let (property_id, tenant_id) = (property.id.clone(), tenant.id.clone());
        tenants.push(tenant);
        occupy(&mut properties, &property_id, &tenant_id);
    }

    for n in former {
        // Not a home a showcase former tenant left: its dates are the ones the demo shows.
        let property = loop {
            let p = &properties[rng.below(properties.len())];
            if !vacated.contains_key(&p.id) {
                break p;
            }
        };
        let moved_in = property
            .occupant_ids
            .iter()
            .filter_map(|id| tenants.iter().find(|t| &t.id == id))
            .map(|t| t.tenancy.start)
            .min()
            .unwrap_or(today);
        let end = moved_in.add_days(-rng.range(7, 90));
        let tenancy = Tenancy {
            start: end.add_days(-rng.range(365, 5000)),
            end: Some(end),
            status: TenancyStatus::Former,
        };
        let street = rng.pick(&streets);
        let forwarding = Address {
            line1: format!("{} {}", rng.range(100, 180), street.name),
            town: street.town.to_owned(),
            postcode: street.postcode.clone(),
        };
        let tenant = tenant(&mut rng, n, today, property, tenancy, Some(forwarding));
        tenants.push(tenant);
    }
    tenants.sort_by(|a, b| a.id.cmp(&b.id));

    let mut jobs = jobs_first;
    let first_job = jobs.len() + 1;
    let occupied: Vec<&Property> = properties
        .iter()
        .filter(|p| !p.occupant_ids.is_empty())
        .collect();
    for n in first_job..=JOB_COUNT {
        let property = *rng.pick(&occupied);
        let tenant_id = rng.pick(&property.occupant_ids).clone();
        jobs.push(job(&mut rng, n, today, property, tenant_id));
    }

    Generated {
        tenants,
        properties,
        jobs,
    }
}

/// The tenant numbered `n`'s phone: `n * 37 mod 1000` visits every number in 900000-900999
/// once (37 is coprime to 1000), so numbers are unique and all in Ofcom's drama range.
pub(super) fn phone(n: usize) -> String {
    format!("07700 900{:03}", (n * 37) % 1000)
}

/// An NI-shaped number with the `QQ` prefix HMRC never allocates, so it cannot be anyone's.
pub(super) fn ni_number(rng: &mut Rng) -> String {
    let suffix = *rng.pick(b"ABCD") as char;
    format!(
        "QQ {:02} {:02} {:02} {suffix}",
        rng.below(100),
        rng.below(100),
        rng.below(100)
    )
}

fn streets(rng: &mut Rng) -> Vec<Street> {
    STREETS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let district = i % TOWNS.len();
            let a = *rng.pick(INWARD_LETTERS) as char;
            let b = *rng.pick(INWARD_LETTERS) as char;
            Street {
                name,
                town: TOWNS[district],
                postcode: format!("LN{} {}{a}{b}", district + 1, rng.below(10)),
            }
        })
        .collect()
}

fn properties(rng: &mut Rng, streets: &[Street]) -> Vec<Property> {
    let mut seen = HashSet::new();
    let mut properties = Vec::with_capacity(PROPERTY_COUNT);
    while properties.len() < PROPERTY_COUNT {
        let street = rng.pick(streets);
        let number = rng.range(1, 80);
        let (kind, bedrooms, line1) = match rng.below(10) {
            0..=3 => (
                PropertyType::Flat,
                rng.range(1, 2),
                format!("Flat {}, {number} {}", rng.range(1, 12), street.name),
            ),
            4..=7 => (
                PropertyType::House,
                rng.range(2, 4),
                format!("{number} {}", street.name),
            ),
            _ => (
                PropertyType::Bungalow,
                rng.range(1, 2),
                format!("{number} {}", street.name),
            ),
        };
        // Flat 3 and house 3 on one street are different homes; two house 3s are not.
        if !seen.insert(line1.clone()) {
            continue;
        }
        properties.push(Property {
            id: format!("P-{:04}", properties.len() + 1),
            address: Address {
                line1,
                town: street.town.to_owned(),
                postcode: street.postcode.clone(),
            },
            kind,
            bedrooms: u8::try_from(bedrooms).unwrap_or(1),
            occupant_ids: Vec::new(),
        });
    }
    properties
}

fn occupy(properties: &mut [Property], property_id: &str, tenant_id: &str) {
    if let Some(p) = properties.iter_mut().find(|p| p.id == property_id) {
        p.occupant_ids.push(tenant_id.to_owned());
    }
}

fn needs(rng: &mut Rng, table: &[(&str, &str)], percent: usize) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    while out.len() < 2 && rng.chance(percent) {
        let (code, description) = *rng.pick(table);
        if out.iter().all(|n| n.code != code) {
            out.push(Need {
                code: code.to_owned(),
                description: description.to_owned(),
            });
        }
    }
    out
}

fn some_of(rng: &mut Rng, table: &[&str], percent: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    while out.len() < 3 && rng.chance(percent) {
        let item = *rng.pick(table);
        if !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

fn tenant(
    rng: &mut Rng,
    n: usize,
    today: Date,
    property: &Property,
    tenancy: Tenancy,
    forwarding_address: Option<Address>,
) -> Tenant {
    let first = *rng.pick(FIRST_NAMES);
    let last = *rng.pick(SURNAMES);
    let email = (!rng.chance(10)).then(|| {
        let domain = if rng.chance(70) {
            "example.org"
        } else {
            "example.net"
        };
        let local = format!("{first}.{last}{n}")
            .to_lowercase()
            .replace('\'', "");
        format!("{local}@{domain}")
    });
    let date_of_birth = today.add_days(-rng.range(18 * 366, 90 * 365));
    let caution_markers = (0..usize::from(rng.chance(8)))
        .map(|i| {
            let (category, instruction) = *rng.pick(MARKERS);
            let applied = today.add_days(-rng.range(10, 900));
            CautionMarker {
                id: format!("CM-{:04}", 100 + n * 2 + i),
                category: category.to_owned(),
                instruction: instruction.to_owned(),
                tenant_informed: rng.chance(85),
                applied,
                review_by: applied.add_days(*rng.pick(&[180, 365, 730])),
            }
        })
        .collect();
    let sharing_restrictions: Vec<String> = match rng.below(100) {
        0..=7 => vec!["research".to_owned()],
        8..=9 => vec!["research".to_owned(), "mailing".to_owned()],
        10..=12 => vec!["all_non_essential".to_owned()],
        _ => Vec::new(),
    };
    let consent = Consent {
        research: sharing_restrictions.is_empty() && rng.chance(80),
        marketing: sharing_restrictions.is_empty() && rng.chance(30),
    };
    let arrears_pence = if rng.chance(35) {
        u32::try_from(rng.range(500, 250_000)).unwrap_or(0)
    } else {
        0
    };
    let household_max = i64::from(property.bedrooms) + 1;
    Tenant {
        id: format!("T-{n:04}"),
        name: format!("{first} {last}"),
        date_of_birth,
        phone: phone(n),
        email,
        address: property.address.clone(),
        property_id: property.id.clone(),
        tenancy,
        forwarding_address,
        ni_number: ni_number(rng),
        benefits: some_of(rng, BENEFITS, 45),
        arrears_pence,
        health: Health {
            conditions: some_of(rng, CONDITIONS, 25),
            support_needs: some_of(rng, SUPPORT_NEEDS, 12),
        },
        access_needs: needs(rng, ACCESS_NEEDS, 15),
        communication_needs: needs(rng, COMMUNICATION_NEEDS, 15),
        no_lone_working: rng.chance(5),
        caution_markers,
        sharing_restrictions,
        consent,
        household: u8::try_from(rng.range(1, household_max)).unwrap_or(1),
    }
}

fn job(rng: &mut Rng, n: usize, today: Date, property: &Property, tenant_id: String) -> Job {
    let (description, gas, emergency) = *rng.pick(REPAIRS);
    let status = match rng.below(100) {
        0..=14 => JobStatus::Reported,
        15..=44 => JobStatus::Scheduled,
        45..=54 => JobStatus::InProgress,
        55..=92 => JobStatus::Completed,
        _ => JobStatus::Cancelled,
    };
    let reported = match status {
        JobStatus::Completed | JobStatus::Cancelled => today.add_days(-rng.range(15, 365)),
        _ => today.add_days(-rng.range(0, 30)),
    };
    let slot = if rng.chance(50) { Slot::Am } else { Slot::Pm };
    let appointment = match status {
        JobStatus::Scheduled => Some(today.add_days(rng.range(1, 21))),
        JobStatus::InProgress => Some(today),
        JobStatus::Completed => Some(reported.add_days(rng.range(1, 14))),
        JobStatus::Reported | JobStatus::Cancelled => None,
    }
    .map(|date| Appointment { date, slot });
    let priority = if emergency {
        Priority::Emergency
    } else if rng.chance(30) {
        Priority::Urgent
    } else {
        Priority::Routine
    };
    let contractor_id = if gas {
        CONTRACTORS[2]
    } else {
        CONTRACTORS[rng.below(2)]
    };
    Job {
        id: format!("J-{n:04}"),
        status,
        priority,
        description: description.to_owned(),
        reported,
        appointment,
        contractor_id: contractor_id.to_owned(),
        property_id: property.id.clone(),
        tenant_id,
        // By the job's number, not the PRNG: a new field must not change every record after it.
        access_notes: ACCESS_NOTES[n % ACCESS_NOTES.len()].to_owned(),
        internal_notes: rng.pick(INTERNAL_NOTES).to_string(),
    }
}
