//! The pages a DPO prints, printed: the subject access report and the register, made from a
//! real gateway's ledger, rendered by headless Chromium to PDF and read back page by page with
//! poppler's `pdftotext`. A first page with nothing on it, a page without its number or whose
//! report it is, or a server path on paper are failures.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::Cli;
use crate::support::http;

/// The Chromium builds that print headless, in the order tried.
const CHROMIUMS: &[&str] = &["chromium-headless-shell", "chromium", "chromium-browser"];

const CONTROLLER: &str = "\n[controller]\nname = \"Lincoln Homes Ltd\"\ncontact = \"1 Example Street, Lincoln LN1 1AA\"\ndpo_contact = \"dpo@example.org\"\nretention = \"Six years after the tenancy ends.\"\n";

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// The tools, or `None` to skip (never under CI, which installs them).
fn tools() -> Option<&'static str> {
    let chromium = CHROMIUMS.iter().copied().find(|c| on_path(c));
    match (chromium, on_path("pdftotext")) {
        (Some(chromium), true) => Some(chromium),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI needs one of {CHROMIUMS:?} and pdftotext (poppler-utils)"
            );
            println!("skipped: no headless Chromium or pdftotext");
            None
        }
    }
}

/// `page` printed to PDF and a screenshot beside it; the text of each page of the PDF.
fn print(chromium: &str, page: &Path) -> Vec<String> {
    let pdf = page.with_extension("pdf");
    let png = page.with_extension("png");
    let url = format!("file://{}", page.display());
    for output in [
        format!("--print-to-pdf={}", pdf.display()),
        format!("--screenshot={}", png.display()),
    ] {
        let status = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                "--window-size=1200,1600",
            ])
            .arg(&output)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(status.status.success(), "{chromium} {output}: {status:?}");
    }
    assert!(std::fs::metadata(&png).expect("a screenshot").len() > 10_000);
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("run pdftotext");
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
    if pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    pages
}

#[tokio::test]
async fn the_report_and_the_register_print_as_a_dpo_sends_them() {
    let Some(chromium) = tools() else {
        return;
    };
    let (gw, _data) = crate::policy::start().await;
    let acme = gw.key("acme-repairs").to_string();
    let police = gw.key("lincs-police").to_string();
    for _ in 0..3 {
        let r = http::get(gw.addr, "/jobs/J-0001", Some(&acme)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = http::request(
        gw.addr,
        "GET",
        "/tenants/T-0001",
        Some(&police),
        &[("x-disclosure-reference", "CRIME-LN-9")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let config = gw.dir.path().join("need-to-know.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(CONTROLLER);
    std::fs::write(&config, text).expect("config");
    let out = tempfile::tempdir().expect("tempdir");
    let report: PathBuf = out.path().join("report.html");
    let html = Cli::new(["audit", "report"])
        .arg(&gw.audit_path)
        .args(["--subject", "T-0001", "--config"])
        .arg(&config)
        .env(
            "NTK_TEST_PSEUDONYM_KEY",
            "a-test-pseudonym-key-of-32-bytes-or-more",
        )
        .success()
        .stdout;
    std::fs::write(&report, html).expect("write");
    let pages = print(chromium, &report);
    let count = pages.len();
    assert!(count >= 2, "{count} page(s)");
    assert!(
        pages[0].contains("Who we shared your data with") && pages[0].contains("ACME Repairs Ltd"),
        "the first page holds the first organisation:\n{}",
        pages[0]
    );
    for (i, page) in pages.iter().enumerate() {
        let number = format!("Page {} of {count}", i + 1);
        assert!(
            page.contains(&number),
            "page {}: no {number:?}:\n{page}",
            i + 1
        );
        assert!(
            page.contains("Subject access report for T-0001"),
            "page {} does not say whose report it is:\n{page}",
            i + 1
        );
    }
    let all = pages.concat();
    for needle in [
        "Lincoln Homes Ltd",
        "dpo@example.org",
        "Information Commissioner",
    ] {
        assert!(all.contains(needle), "{needle} not printed");
    }
    let ledger_dir = gw.audit_path.parent().expect("dir").display().to_string();
    assert!(!all.contains(&ledger_dir), "the ledger's path is printed");

    let register = out.path().join("register.html");
    Cli::new(["register", "--config"])
        .arg(&config)
        .arg("--output")
        .arg(&register)
        .env(
            "NTK_TEST_PSEUDONYM_KEY",
            "a-test-pseudonym-key-of-32-bytes-or-more",
        )
        .success();
    let pages = print(chromium, &register);
    assert!(
        pages[0].contains("Disclosure register") && pages[0].trim().lines().count() > 15,
        "the register's first page:\n{}",
        pages[0]
    );
    let count = pages.len();
    for (i, page) in pages.iter().enumerate() {
        let number = format!("Page {} of {count}", i + 1);
        assert!(
            page.contains(&number),
            "register page {}: no {number:?}",
            i + 1
        );
    }
    // The matrix has a column per recipient type: every one is on its first page, none cut off.
    let matrix = pages
        .iter()
        .find(|p| p.contains("Each disclosed field"))
        .expect("the matrix");
    for kind in ["Council tax", "Repairs", "Research", "Utility debt"] {
        assert!(
            matrix.contains(kind),
            "the matrix's {kind} column is cut off:\n{matrix}"
        );
    }
}
