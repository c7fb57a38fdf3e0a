//! The fixed word lists the generator draws from.
//!
//! Names are common British ones combined at random, so no record is a real person; street
//! names are invented; codes and descriptions mirror what housing systems record.

pub(super) const FIRST_NAMES: &[&str] = &[
    "Joan",
    "Margaret",
    "Aisha",
    "Chloe",
    "Ewa",
    "Fiona",
    "Grace",
    "Hannah",
    "Imogen",
    "Jasmine",
    "Katarzyna",
    "Leah",
    "Maryam",
    "Niamh",
    "Olivia",
    "Priya",
    "Rosie",
    "Sophie",
    "Tanya",
    "Zofia",
    "Adam",
    "Bilal",
    "Callum",
    "Darren",
    "Ethan",
    "Frank",
    "Gareth",
    "Harry",
    "Ian",
    "Jakub",
    "Kieran",
    "Liam",
    "Marek",
    "Nathan",
    "Owen",
    "Patrick",
    "Ravi",
    "Stuart",
    "Tomasz",
    "Wayne",
];

pub(super) const SURNAMES: &[&str] = &[
    "Ashby",
    "Barker",
    "Bennett",
    "Brooks",
    "Carter",
    "Clarke",
    "Dawson",
    "Ellis",
    "Fletcher",
    "Foster",
    "Gibson",
    "Hall",
    "Harper",
    "Holmes",
    "Hughes",
    "Jennings",
    "Kaur",
    "Kowalski",
    "Lambert",
    "Marsh",
    "Mitchell",
    "Nowak",
    "O'Neill",
    "Parker",
    "Patel",
    "Pearson",
    "Quinn",
    "Reeves",
    "Shaw",
    "Simpson",
    "Stone",
    "Thornton",
    "Turner",
    "Walsh",
    "Webb",
    "Whitaker",
    "Wilkinson",
    "Wood",
    "Wright",
    "Yates",
];

/// Invented street names; districts and inward codes are assigned per street at random.
pub(super) const STREETS: &[&str] = &[
    "Alder Close",
    "Birch Avenue",
    "Cherry Tree Road",
    "Damson Walk",
    "Elm Grove",
    "Foxglove Lane",
    "Gorse Crescent",
    "Hawthorn Drive",
    "Ivy Court",
    "Juniper Way",
    "Kestrel Road",
    "Larch Street",
    "Meadow View",
    "Nettle Row",
    "Orchard Gardens",
    "Poppy Close",
    "Quarry Lane",
    "Rowan Terrace",
    "Sorrel Place",
    "Teasel Way",
    "Willow Bank",
    "Yarrow Court",
];

/// Towns by district LN1..LN6.
pub(super) const TOWNS: [&str; 6] = [
    "Lincoln",
    "Lincoln",
    "Cherry Willingham",
    "Branston",
    "Waddington",
    "North Hykeham",
];

/// Letters used in inward codes (Royal Mail never uses C, I, K, M, O or V there).
pub(super) const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

pub(super) const BENEFITS: &[&str] = &[
    "Universal Credit",
    "Housing Benefit",
    "Pension Credit",
    "Personal Independence Payment",
    "Attendance Allowance",
    "Carer's Allowance",
    "Employment and Support Allowance",
];

pub(super) const CONDITIONS: &[&str] = &[
    "asthma",
    "type 2 diabetes",
    "COPD",
    "epilepsy",
    "depression",
    "anxiety",
    "arthritis",
    "hearing loss",
    "sight loss",
    "early-stage dementia",
];

pub(super) const SUPPORT_NEEDS: &[&str] = &[
    "help reading letters",
    "reminder call the day before appointments",
    "support worker present at visits",
    "needs time to reach the door",
];

pub(super) const ACCESS_NEEDS: &[(&str, &str)] = &[
    ("WHEELCHAIR", "Wheelchair user: step-free access needed"),
    ("HOH", "Hard of hearing: text, don't call"),
    ("INTERP-PL", "Interpreter needed: Polish"),
    ("INTERP-LT", "Interpreter needed: Lithuanian"),
    (
        "MOBILITY",
        "Limited mobility: allow time to answer the door",
    ),
    ("SIGHT", "Partially sighted: say who you are at the door"),
];

pub(super) const COMMUNICATION_NEEDS: &[(&str, &str)] = &[
    ("TEXT-ONLY", "Contact by text message only"),
    ("LARGE-PRINT", "Letters in large print"),
    ("BSL", "British Sign Language interpreter for visits"),
    ("EASY-READ", "Easy-read letters"),
    ("NO-EMAIL", "Does not use email: post or phone"),
    ("AFTER-10", "Do not call before 10am"),
];

pub(super) const MARKERS: &[(&str, &str)] = &[
    ("verbal abuse", "attend in pairs"),
    (
        "threatening behaviour",
        "attend in pairs; do not enter alone",
    ),
    (
        "aggressive dog",
        "ask for the dog to be secured before entering",
    ),
    ("physical assault", "call the office before attending"),
];

/// (description, gas work, emergency).
pub(super) const REPAIRS: &[(&str, bool, bool)] = &[
    ("Boiler not heating water", true, false),
    ("No heating in any room", true, false),
    ("Annual gas safety check", true, false),
    ("Smell of gas near cooker", true, true),
    ("Kitchen tap dripping", false, false),
    ("Toilet cistern not filling", false, false),
    ("Front door lock sticking", false, false),
    ("Damp and mould in bathroom", false, false),
    ("Extractor fan not working", false, false),
    ("Bedroom window latch broken", false, false),
    ("Water coming through ceiling under bathroom", false, true),
    ("Kitchen socket sparking", false, true),
    ("Fence panel blown down", false, false),
    ("Kitchen sink blocked", false, false),
    ("Stair handrail loose", false, false),
    ("Smoke alarm beeping", false, false),
    ("Guttering overflowing", false, false),
];

/// What a tenant told the call centre about getting in, typed as free text. Some carry a
/// relative's phone number (Ofcom's drama range) or email address (`example.org`), as real
/// notes do: what a rule's scrubbing must catch.
pub(super) const ACCESS_NOTES: &[&str] = &[
    "Key safe by the back door, code from the office",
    "Daughter will let you in: call her on 07700 900555 the day before",
    "Tenant works nights, mornings after 11 only",
    "Ring the neighbour at no. 4 if no answer, or text 07700 900718",
    "Send the appointment to her son, sam.taylor@example.org",
    "Parking at the rear; gate code 1942",
    "Support worker attends too: +44 7700 900291",
];

pub(super) const INTERNAL_NOTES: &[&str] = &[
    "Tenant chased twice by phone",
    "Possible recharge: damage may be deliberate",
    "No access at previous visit",
    "Linked to damp survey",
    "Tenant unhappy with last contractor",
    "Check for asbestos before drilling",
    "Raised by neighbour",
];
