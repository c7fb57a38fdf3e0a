//! Shared by the targets: a fixed rules directory, written once per process and loaded.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use need_to_know::rules::Policy;

pub const RECIPIENTS: &str = r#"
[[recipient]]
id = "acme-repairs"
name = "ACME Repairs Ltd"
type = "repairs-contractor"
api_key_sha256 = "d76c5488b91bf9b125e97aa6176d0d893c7da3115169ed61aabcb169124d10b8"

[[recipient]]
id = "brightfix"
name = "BrightFix Property Services"
type = "repairs-contractor"
api_key_sha256 = "07224c755616395574b992c131c9d9b8b0088d228793e22adbd34df77e92021d"
"#;

/// The repairs-contractor type of the example in `docs/rules.md`, with a `refuse` on "repairs"
/// so that it can fire for this type, and extra routes for `request_target`.
pub const REPAIRS_CONTRACTOR: &str = r#"
type = "repairs-contractor"
purpose = "Carry out repairs, maintenance and safety checks at the tenant's home"
lawful_basis = "contract"
rate_limit = "60/min"

[[route]]
method = "GET"
path = "/jobs/{job_id}"
query = []
subjects = ["tenant.id"]
allow = [
  "id", "status", "priority", "description", "appointment",
  "property.address",
  "tenant.name", "tenant.phone", "tenant.email",
  "tenant.access_needs[].description",
]

[[route.when]]
condition = "body.contractor_id == recipient.id && body.status in ['scheduled', 'in_progress']"
reason = "contractor assigned to an open job at this property"
allow = ["tenant.caution_markers[].category", "tenant.caution_markers[].instruction"]

[[route.items]]
path = "tenant.caution_markers"
keep = "item.tenant_informed && timestamp(item.review_by) > now"

[[route.derive]]
field = "tenant.age_band"
value = "age_band(body.tenant.date_of_birth)"

[route.refuse]
condition = "'repairs' in body.sharing_restrictions"
reason = "the tenant has objected to this use"

[[route]]
method = "GET"
path = "/jobs"
query = ["status", "contractor_id"]
subjects = ["[].tenant.id"]
allow = ["[].id", "[].status", "[].priority"]

[[route]]
method = "GET"
path = "/jobs/open"
query = ["district"]
allow = ["[].id"]

[[route]]
method = "POST"
path = "/jobs/{job_id}/notes"
query = []
allow = ["id"]

[[route]]
method = "GET"
path = "/properties/{property_id}/occupants/{tenant_id}"
query = ["fields"]
allow = ["id"]
"#;

/// A directory of this process under the system temp dir, created if missing.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ntk-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("types")).expect("create scratch dir");
    dir
}

pub fn write_rules(dir: &Path, recipients: &str, type_file: &str, type_text: &str) {
    std::fs::write(dir.join("recipients.toml"), recipients).expect("write recipients.toml");
    std::fs::write(dir.join("types").join(type_file), type_text).expect("write type file");
}

/// The fixed policy, loaded once and kept for the life of the process.
pub fn policy() -> &'static Policy {
    thread_local! {
        static POLICY: &'static Policy = {
            let dir = scratch("policy");
            write_rules(&dir, RECIPIENTS, "repairs-contractor.toml", REPAIRS_CONTRACTOR);
            let policy = match Policy::load(&dir) {
                Ok(p) => p,
                Err(e) => panic!(
                    "fixed fuzz policy does not load: {:?}",
                    e.0.iter().map(ToString::to_string).collect::<Vec<_>>()
                ),
            };
            let _ = std::fs::remove_dir_all(&dir);
            Box::leak(Box::new(policy))
        };
    }
    POLICY.with(|p| *p)
}
