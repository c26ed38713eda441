//! Checks of the `frontend:` section, and the site manifest: the site
//! directory is read and hashed here, before any AWS call, so a missing
//! directory or an unreadable file is a located error, and the plan can say
//! exactly which files will be uploaded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::stack::diagnostics::PathError;
use crate::stack::frontend::spec::SiteFile;
use crate::stack::limits as rules;
use crate::stack::names::derived_bucket_name;
use crate::stack::spec::StackFile;
use crate::stack::yaml::PathSeg;

/// Account id used to check the length of a derived bucket name (every AWS
/// account id has 12 digits).
const SAMPLE_ACCOUNT: &str = "123456789012";
/// Directories never published (version control).
const SKIPPED_DIRS: &[&str] = &[".git", ".hg", ".svn"];
/// Files never published (operating-system litter).
const SKIPPED_FILES: &[&str] = &[".DS_Store", "Thumbs.db", "desktop.ini"];
/// Deepest directory nesting followed (guards against symlink loops).
const MAX_DEPTH: usize = 32;
/// S3's limit on one PUT (the tool uploads each file in one request).
const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// S3's limit on an object key, in UTF-8 bytes.
const MAX_KEY_BYTES: usize = 1024;

fn at(parts: &[&str]) -> Vec<PathSeg> {
    parts.iter().map(|p| PathSeg::Key(p.to_string())).collect()
}

/// Validates `spec.frontend` and fills in its manifest and site directory.
pub fn validate(
    spec: &mut StackFile, stack: &str, region: &str, partition: &str, base_dir: &Path, errs: &mut Vec<PathError>,
) {
    let Some(f) = spec.frontend.as_mut() else {
        return;
    };

    match &f.bucket_name {
        Some(name) => {
            let p = at(&["frontend", "bucket_name"]);
            if let Err(e) = rules::validate_bucket_name(name) {
                errs.push(
                    PathError::new(p, e).help(
                        "use 3 to 63 lowercase letters, digits and hyphens, or remove `bucket_name` to derive one",
                    ),
                );
            } else if name.contains('.') {
                errs.push(
                    PathError::new(p, format!("bucket name `{name}` contains a period"))
                        .help("periods break HTTPS to the bucket's virtual-host name; use hyphens instead"),
                );
            }
        }
        None => {
            let derived = derived_bucket_name(stack, SAMPLE_ACCOUNT, region);
            if !stack.is_empty()
                && !region.is_empty()
                && let Err(e) = rules::validate_bucket_name(&derived)
            {
                errs.push(
                    PathError::new(at(&["frontend"]), format!("the derived bucket name does not work: {e}"))
                        .help("set `frontend.bucket_name` explicitly"),
                );
            }
        }
    }

    if let Some(site) = &f.site {
        let p = at(&["frontend", "site"]);
        match read_site(&base_dir.join(site)) {
            Ok((dir, files)) => {
                if !files.iter().any(|x| x.key == "index.html") {
                    errs.push(
                        PathError::new(p, format!("`{site}` has no index.html"))
                            .help("point `site` at the build output (the directory holding index.html), e.g. `./dist`"),
                    );
                }
                f.manifest = files;
                f.site_dir = Some(dir);
            }
            Err(e) => errs.push(PathError::new(p, e.0).help(e.1)),
        }
    }

    let mut seen = BTreeSet::new();
    for (i, a) in f.aliases.iter().enumerate() {
        let p = vec![PathSeg::Key("frontend".into()), PathSeg::Key("aliases".into()), PathSeg::Index(i)];
        if let Err(e) = check_alias(a) {
            errs.push(
                PathError::new(p.clone(), e).help("write a domain name such as `www.example.com` or `*.example.com`"),
            );
        }
        if !seen.insert(a.to_ascii_lowercase()) {
            errs.push(PathError::new(p, format!("`{a}` is listed twice")).help("list each domain once"));
        }
    }
    match (&f.certificate_arn, f.aliases.is_empty()) {
        (None, false) => errs.push(
            PathError::new(at(&["frontend", "aliases"]), "custom domain names need a certificate")
                .help("set `certificate_arn` to an ACM certificate in us-east-1 that covers them"),
        ),
        (Some(_), true) => errs.push(
            PathError::new(at(&["frontend", "certificate_arn"]), "a certificate without `aliases` is never used")
                .help("list the domain names it covers under `aliases`, or remove `certificate_arn`"),
        ),
        _ => {}
    }
    if let Some(arn) = &f.certificate_arn
        && let Err((e, help)) = check_certificate_arn(arn, partition)
    {
        errs.push(PathError::new(at(&["frontend", "certificate_arn"]), e).help(help));
    }

    if let Err(e) = check_api_path(&f.api_path) {
        errs.push(PathError::new(at(&["frontend", "api_path"]), e).help("write a path prefix such as `/api`"));
    }
}

/// Reads the site directory: every file, with its MD5, sorted by key.
/// Errors are (message, help).
pub fn read_site(dir: &Path) -> Result<(PathBuf, Vec<SiteFile>), (String, String)> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| {
        (
            format!("cannot read the site directory {shown}: {e}"),
            "build the site first, or fix the path (it is relative to the stack file)".to_string(),
        )
    })?;
    if !meta.is_dir() {
        return Err((format!("{shown} is not a directory"), "point `site` at the directory of the built site".into()));
    }
    let root = dir.canonicalize().map_err(|e| (format!("cannot resolve {shown}: {e}"), String::new()))?;
    let mut files = Vec::new();
    walk(&root, &root, 0, &mut files)?;
    files.sort_by(|a, b| a.key.cmp(&b.key));
    if files.is_empty() {
        return Err((format!("the site directory {shown} is empty"), "build the site first".into()));
    }
    Ok((root, files))
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<SiteFile>) -> Result<(), (String, String)> {
    if depth > MAX_DEPTH {
        return Err((
            format!("{} is nested more than {MAX_DEPTH} directories deep", dir.display()),
            "is there a symbolic link loop in the site directory?".into(),
        ));
    }
    let io = |p: &Path, e: std::io::Error| {
        (format!("cannot read {}: {e}", p.display()), "check the file's permissions".to_string())
    };
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(|e| io(dir, e))?.collect::<Result<_, _>>().map_err(|e| io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return Err((
                format!("{} is not a UTF-8 file name", path.display()),
                "rename it: S3 keys are UTF-8".into(),
            ));
        };
        // Follows symbolic links, like a copy of the directory would.
        let meta = std::fs::metadata(&path).map_err(|x| io(&path, x))?;
        if meta.is_dir() {
            if !SKIPPED_DIRS.contains(&name) {
                walk(root, &path, depth + 1, out)?;
            }
            continue;
        }
        if SKIPPED_FILES.contains(&name) {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let key = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
        if key.len() > MAX_KEY_BYTES {
            return Err((
                format!("{key} is longer than S3's {MAX_KEY_BYTES}-byte key limit"),
                "shorten its path".into(),
            ));
        }
        if meta.len() > MAX_OBJECT_BYTES {
            return Err((
                format!("{key} is larger than 5 GiB, S3's limit for one upload"),
                "serve large media from elsewhere; the site bucket is for the built app".into(),
            ));
        }
        out.push(SiteFile { key, md5: md5_file(&path).map_err(|x| io(&path, x))?, size: meta.len() });
    }
    Ok(())
}

/// Hex MD5 of a file, read in blocks (site files can be large).
pub fn md5_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(&h.finalize()[..]))
}

/// A CloudFront alternate domain name: DNS labels of letters, digits and
/// hyphens, optionally starting with a `*.` wildcard, at most 253 characters.
fn check_alias(a: &str) -> Result<(), String> {
    if a.is_empty() || a.len() > 253 {
        return Err(format!("`{a}` must be 1 to 253 characters"));
    }
    let rest = a.strip_prefix("*.").unwrap_or(a);
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("`{a}` is not a fully qualified domain name"));
    }
    for l in labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-');
        if !ok {
            return Err(format!(
                "`{a}` is not a valid domain name: each label is 1 to 63 lowercase letters, digits or hyphens, not starting or ending with a hyphen"
            ));
        }
    }
    Ok(())
}

/// An ACM certificate ARN in us-east-1, the only region CloudFront takes
/// certificates from. Errors are (message, help).
fn check_certificate_arn(arn: &str, partition: &str) -> Result<(), (String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let shape = "arn:aws:acm:us-east-1:123456789012:certificate/<id>";
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "acm" {
        return Err((
            format!("`{arn}` is not an ACM certificate ARN"),
            format!("copy the ARN from the ACM console; it looks like {shape}"),
        ));
    }
    if parts[1] != partition {
        return Err((
            format!("the certificate is in partition `{}`, the stack in `{partition}`", parts[1]),
            "use a certificate of the stack's partition".into(),
        ));
    }
    if parts[3] != "us-east-1" {
        return Err((
            format!("the certificate is in {}; CloudFront only uses ACM certificates from us-east-1", parts[3]),
            "request or import the certificate in us-east-1 (N. Virginia)".into(),
        ));
    }
    if parts[4].len() != 12 || !parts[4].chars().all(|c| c.is_ascii_digit()) {
        return Err((format!("`{arn}` has no 12-digit account id"), format!("it looks like {shape}")));
    }
    let id = parts[5].strip_prefix("certificate/").unwrap_or("");
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err((format!("`{arn}` does not name a certificate"), format!("it looks like {shape}")));
    }
    Ok(())
}

/// The `/api`-like prefix of the API behaviour's path pattern.
fn check_api_path(p: &str) -> Result<(), String> {
    let ok_chars = p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if !p.starts_with('/') || p.len() < 2 || p.ends_with('/') || !ok_chars || p.contains("//") {
        return Err(format!(
            "`{p}` must start with `/`, not end with `/`, and use letters, digits, `-`, `_`, `.` and `/`"
        ));
    }
    if p.len() > 200 {
        return Err("the API path is longer than 200 characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert!(check_alias("www.example.com").is_ok());
        assert!(check_alias("*.example.com").is_ok());
        assert!(check_alias("example").is_err());
        assert!(check_alias("WWW.example.com").is_err());
        assert!(check_alias("-a.example.com").is_err());
        assert!(check_alias("a..example.com").is_err());
        assert!(check_alias("a.*.example.com").is_err());
    }

    #[test]
    fn certificate_arns() {
        let good = "arn:aws:acm:us-east-1:123456789012:certificate/1f2e3d4c-0000-4000-8000-123456789abc";
        assert!(check_certificate_arn(good, "aws").is_ok());
        let e = check_certificate_arn(&good.replace("us-east-1", "eu-west-1"), "aws").unwrap_err();
        assert!(e.0.contains("us-east-1"), "{e:?}");
        assert!(check_certificate_arn("arn:aws:iam::123456789012:server-certificate/x", "aws").is_err());
        assert!(check_certificate_arn(good, "aws-cn").is_err());
        assert!(check_certificate_arn("arn:aws:acm:us-east-1:1234:certificate/ab", "aws").is_err());
    }

    #[test]
    fn api_paths() {
        assert!(check_api_path("/api").is_ok());
        assert!(check_api_path("/v1/api").is_ok());
        for bad in ["api", "/", "/api/", "/a*", "//a"] {
            assert!(check_api_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_name_fits_for_the_longest_stack_and_region() {
        let n = derived_bucket_name(&"a".repeat(24), SAMPLE_ACCOUNT, "ap-southeast-5");
        assert!(rules::validate_bucket_name(&n).is_ok(), "{n}");
    }

    #[test]
    fn reads_a_site_sorted_with_md5_and_skips_litter() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("assets")).unwrap();
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        std::fs::write(d.path().join("index.html"), "hello").unwrap();
        std::fs::write(d.path().join("assets/app.js"), "x").unwrap();
        std::fs::write(d.path().join(".DS_Store"), "x").unwrap();
        std::fs::write(d.path().join(".git/HEAD"), "x").unwrap();
        let (_, files) = read_site(d.path()).unwrap();
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, vec!["assets/app.js", "index.html"]);
        assert_eq!(files[1].md5, "5d41402abc4b2a76b9719d911017c592");
        assert!(read_site(&d.path().join("missing")).is_err());
    }
}
