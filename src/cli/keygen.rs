//! `keygen`: a new API key, and the line to paste into `recipients.toml`; or, with
//! `--checkpoint`, the key pair that signs audit checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::audit::checkpoint;
use crate::identity;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Make the Ed25519 key pair for audit checkpoints instead of an API key.
    #[arg(long, requires = "out")]
    checkpoint: bool,
    /// Where to write checkpoint.key (PKCS#8 PEM, mode 0600), checkpoint.pub (PEM SPKI) and
    /// checkpoint.vkey (the C2SP verifier key, `<name>+<hex key hash>+<base64 key>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The key's name in checkpoint signatures and the verifier key (no spaces, no '+').
    #[arg(long, default_value = "need-to-know", requires = "checkpoint")]
    name: String,
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    match (&args.out, args.checkpoint) {
        (Some(dir), true) => checkpoint_pair(dir, &args.name),
        (Some(_), false) => anyhow::bail!("--out is for --checkpoint; an API key is printed"),
        _ => {
            let (key, hash) =
                identity::new_api_key().context("the operating system's random source failed")?;
            // stdout stays two lines a script can read; the labels are for the person.
            eprintln!("# The new API key (line 1): give it to the recipient; it is not stored.");
            eprintln!(
                "# Its hash (line 2): paste it into the recipient's entry in recipients.toml."
            );
            println!("{key}");
            println!("api_key_sha256 = \"{hash}\"");
            Ok(0)
        }
    }
}

/// Writes the pair, never over an existing file (a lost private key would orphan every
/// checkpoint signed with it), and prints the paths and the config line.
fn checkpoint_pair(dir: &Path, name: &str) -> anyhow::Result<u8> {
    let (private, public) = checkpoint::generate()?;
    let verifier = checkpoint::note::Verifier::new(name, public.clone())?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = dir.join("checkpoint.key");
    let public_path = dir.join("checkpoint.pub");
    let verifier_path = dir.join("checkpoint.vkey");
    for path in [&key, &public_path, &verifier_path] {
        if path.exists() {
            anyhow::bail!("{} exists; not overwritten", path.display());
        }
    }
    write_new(&key, private.as_bytes(), 0o600)?;
    write_new(&public_path, public.to_pem().as_bytes(), 0o644)?;
    write_new(&verifier_path, format!("{verifier}\n").as_bytes(), 0o644)?;
    println!(
        "private key: {} (keep it on the gateway only)",
        key.display()
    );
    println!(
        "public key: {} (give it to whoever verifies)",
        public_path.display()
    );
    println!(
        "verifier key: {} (for audit check-proof and any C2SP note tool)",
        verifier_path.display()
    );
    println!("checkpoint_key = \"{}\"", key.display());
    Ok(0)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
