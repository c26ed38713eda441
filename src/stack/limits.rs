//! AWS naming rules and limits, checked locally before any AWS call.
//!
//! Why this module exists: `infra` is exercised against moto, the local AWS
//! emulator, and moto accepts almost any name, tag or size. Real AWS does
//! not. Without these checks a `stack.yaml` that works perfectly against the
//! emulator fails halfway through a real deployment. So we enforce AWS's
//! documented limits ourselves, up front, with messages that say exactly what
//! is wrong and what is allowed.
//!
//! Every check is a pure function that returns `Ok(())` or `Err(sentence)`,
//! where the sentence names the offending value, says what is wrong and what
//! AWS allows. Lengths are counted in characters (Unicode scalar values), not
//! bytes. Each public item's doc comment cites the AWS document the limit
//! comes from.

// ---------------------------------------------------------------------------
// Regions
// ---------------------------------------------------------------------------

/// Retention periods CloudWatch Logs accepts, in days (CloudWatch Logs API
/// Reference, PutRetentionPolicy, `retentionInDays`).
pub const RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// An AWS Region and the letter suffixes of the Availability Zones it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// The Region code, e.g. `"us-east-1"`.
    pub name: &'static str,
    /// Availability Zone letter suffixes, e.g. `&["a", "b", "c"]`; the full
    /// zone name is the Region code followed by the suffix (`"us-east-1a"`).
    pub azs: &'static [&'static str],
}

const ABC: &[&str] = &["a", "b", "c"];

/// Every commercial AWS Region as of 2025, plus the two AWS GovCloud (US)
/// Regions and the two China Regions, with their Availability Zone suffixes.
///
/// Source: the AWS General Reference / "AWS Regions and Availability Zones"
/// pages of the AWS Global Infrastructure documentation, and the zones
/// returned by `DescribeAvailabilityZones`. Where a zone exists but is closed
/// to new accounts it is left out (us-west-1b, ap-northeast-1b, ca-central-1c),
/// because a subnet placed there fails for most users.
#[rustfmt::skip]
pub static REGIONS: &[Region] = &[
    // North America
    Region { name: "us-east-1", azs: &["a", "b", "c", "d", "e", "f"] },
    Region { name: "us-east-2", azs: ABC },
    Region { name: "us-west-1", azs: &["a", "c"] },
    Region { name: "us-west-2", azs: &["a", "b", "c", "d"] },
    Region { name: "ca-central-1", azs: &["a", "b", "d"] },
    Region { name: "ca-west-1", azs: ABC },
    Region { name: "mx-central-1", azs: ABC },
    // South America
    Region { name: "sa-east-1", azs: ABC },
    // Europe
    Region { name: "eu-central-1", azs: ABC },
    Region { name: "eu-central-2", azs: ABC },
    Region { name: "eu-west-1", azs: ABC },
    Region { name: "eu-west-2", azs: ABC },
    Region { name: "eu-west-3", azs: ABC },
    Region { name: "eu-south-1", azs: ABC },
    Region { name: "eu-south-2", azs: ABC },
    Region { name: "eu-north-1", azs: ABC },
    // Africa and the Middle East
    Region { name: "af-south-1", azs: ABC },
    Region { name: "il-central-1", azs: ABC },
    Region { name: "me-south-1", azs: ABC },
    Region { name: "me-central-1", azs: ABC },
    // Asia Pacific
    Region { name: "ap-east-1", azs: ABC },
    Region { name: "ap-east-2", azs: ABC },
    Region { name: "ap-south-1", azs: ABC },
    Region { name: "ap-south-2", azs: ABC },
    Region { name: "ap-northeast-1", azs: &["a", "c", "d"] },
    Region { name: "ap-northeast-2", azs: &["a", "b", "c", "d"] },
    Region { name: "ap-northeast-3", azs: ABC },
    Region { name: "ap-southeast-1", azs: ABC },
    Region { name: "ap-southeast-2", azs: ABC },
    Region { name: "ap-southeast-3", azs: ABC },
    Region { name: "ap-southeast-4", azs: ABC },
    Region { name: "ap-southeast-5", azs: ABC },
    Region { name: "ap-southeast-6", azs: ABC },
    Region { name: "ap-southeast-7", azs: ABC },
    // AWS GovCloud (US)
    Region { name: "us-gov-west-1", azs: ABC },
    Region { name: "us-gov-east-1", azs: ABC },
    // China
    Region { name: "cn-north-1", azs: &["a", "b", "d"] },
    Region { name: "cn-northwest-1", azs: ABC },
];

/// Looks up a Region by its exact code (e.g. `"eu-west-1"`), from [`REGIONS`].
pub fn region(name: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.name == name)
}

/// Full Availability Zone names for a Region, e.g. `["us-west-1a",
/// "us-west-1c"]`, or `None` for an unknown Region. Per the AWS Global
/// Infrastructure documentation, a zone name is the Region code followed by a
/// letter.
pub fn region_azs(name: &str) -> Option<Vec<String>> {
    region(name).map(|r| r.azs.iter().map(|az| format!("{}{}", r.name, az)).collect())
}

/// The ARN partition a Region belongs to: `"aws-us-gov"` for GovCloud
/// (`us-gov-*`), `"aws-cn"` for China (`cn-*`), otherwise `"aws"`. Per the AWS
/// General Reference, "Amazon Resource Names (ARNs)", partition element.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Longest value (in characters) quoted whole in an error message; longer
/// values are shortened with "..." so a 1,000-character mistake does not
/// flood the terminal.
const SHOWN_MAX: usize = 64;

/// Quotes a user value for an error message, escaping control characters and
/// shortening very long values.
fn shown(s: &str) -> String {
    if s.chars().count() > SHOWN_MAX {
        let head: String = s.chars().take(SHOWN_MAX - 3).collect();
        format!("\"{}...\"", escape(&head))
    } else {
        format!("\"{}\"", escape(s))
    }
}

fn escape(s: &str) -> String {
    let debug = format!("{s:?}");
    debug[1..debug.len() - 1].to_string()
}

/// Describes one offending character for an error message.
fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '"' => "a double quote (\")".to_string(),
        c if c.is_control() || (c.is_whitespace() && c != ' ') => {
            format!("the invisible character U+{:04X}", u32::from(c))
        }
        c => format!("\"{c}\""),
    }
}

/// Which body sets the rule; it changes only the wording of messages.
#[derive(Clone, Copy)]
enum Who {
    Aws,
    Infra,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Aws => "AWS",
            Who::Infra => "infra",
        }
    }
}

/// Length and character-set rule shared by most name checks.
struct Rule<'a> {
    /// What the value is, e.g. "load balancer name".
    what: &'a str,
    min: usize,
    max: usize,
    allowed: fn(char) -> bool,
    /// The allowed characters (and any other constraints) in words, e.g.
    /// "letters, digits and hyphens, not starting or ending with a hyphen".
    charset: &'static str,
    who: Who,
}

impl Rule<'_> {
    fn check(&self, s: &str) -> Result<(), String> {
        let who = self.who.name();
        let len = s.chars().count();
        if len == 0 && self.min > 0 {
            return Err(if self.min == self.max {
                format!("{} is empty; {who} requires exactly {} characters ({})", self.what, self.min, self.charset)
            } else {
                format!(
                    "{} is empty; {who} requires {} to {} characters ({})",
                    self.what, self.min, self.max, self.charset
                )
            });
        }
        if len > self.max {
            return Err(format!(
                "{} {} is {len} characters; {who} allows at most {} ({})",
                self.what,
                shown(s),
                self.max,
                self.charset
            ));
        }
        if len < self.min {
            return Err(format!(
                "{} {} is {len} character{}; {who} requires at least {} ({})",
                self.what,
                shown(s),
                if len == 1 { "" } else { "s" },
                self.min,
                self.charset
            ));
        }
        if let Some((i, c)) = s.chars().enumerate().find(|&(_, c)| !(self.allowed)(c)) {
            let hint = if c.is_ascii_uppercase() && (self.allowed)(c.to_ascii_lowercase()) {
                " (uppercase letters are not allowed)"
            } else {
                ""
            };
            return Err(format!(
                "{} {} contains {} at position {}{hint}; {who} allows only {}",
                self.what,
                shown(s),
                describe_char(c),
                i + 1,
                self.charset
            ));
        }
        Ok(())
    }

    fn fail(&self, s: &str, problem: &str) -> String {
        format!("{} {} {problem}; {} allows only {}", self.what, shown(s), self.who.name(), self.charset)
    }
}

fn is_alnum_hyphen(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

fn is_alnum_underscore(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_alnum_hyphen_underscore(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn starts_with_ascii_letter(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

// ---------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------

/// Characters allowed in tag keys and values: Unicode letters and digits,
/// Unicode space separators (a plain space and other non-control white
/// space), and `+ - = . _ : / @`.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '+' | '-' | '=' | '.' | '_' | ':' | '/' | '@')
}

const TAG_CHARSET: &str = "Unicode letters, digits, spaces and + - = . _ : / @";

/// Tag key: 1 to 128 characters of Unicode letters, digits, spaces and
/// `+ - = . _ : / @`, and not starting with `aws:` in any letter case.
///
/// Per the AWS Resource Groups Tagging API / "Tagging your AWS resources"
/// guide (Tag naming limits and requirements): maximum key length 128 Unicode
/// characters; the `aws:` prefix is reserved for AWS use.
pub fn validate_tag_key(k: &str) -> Result<(), String> {
    Rule { what: "tag key", min: 1, max: 128, allowed: is_tag_char, charset: TAG_CHARSET, who: Who::Aws }.check(k)?;
    if starts_with_ci(k, "aws:") {
        return Err(format!(
            "tag key {} starts with \"aws:\", a prefix AWS reserves for its own tags; choose a key without it",
            shown(k)
        ));
    }
    Ok(())
}

/// Tag value: 0 to 256 characters of Unicode letters, digits, spaces and
/// `+ - = . _ : / @` (an empty value is allowed).
///
/// Per the "Tagging your AWS resources" guide (Tag naming limits and
/// requirements): maximum value length 256 Unicode characters.
pub fn validate_tag_value(v: &str) -> Result<(), String> {
    Rule { what: "tag value", min: 0, max: 256, allowed: is_tag_char, charset: TAG_CHARSET, who: Who::Aws }.check(v)
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// Stack name (infra's own rule, not an AWS one): 1 to 24 characters of
/// lowercase letters, digits and hyphens, starting with a letter, not ending
/// with a hyphen and without `--`.
///
/// The stack name is embedded in the bucket, load balancer, target group and
/// RDS identifier names, so it must fit the strictest of those (S3's lowercase
/// rule, RDS's letter-first and no-`--` rule, and ELB's 32-character limit
/// with room for a suffix).
pub fn validate_stack_name(s: &str) -> Result<(), String> {
    let rule = Rule {
        what: "stack name",
        min: 1,
        max: 24,
        allowed: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
        charset: "lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen and without \"--\"",
        who: Who::Infra,
    };
    rule.check(s)?;
    if !starts_with_ascii_letter(s) {
        return Err(rule.fail(s, "does not start with a letter"));
    }
    if s.ends_with('-') {
        return Err(rule.fail(s, "ends with a hyphen"));
    }
    if s.contains("--") {
        return Err(rule.fail(s, "contains two consecutive hyphens"));
    }
    Ok(())
}

const BUCKET_RESERVED_PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];
const BUCKET_RESERVED_SUFFIXES: &[&str] = &["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// S3 general purpose bucket name: 3 to 63 characters of lowercase letters,
/// digits, periods and hyphens; starts and ends with a letter or digit; no two
/// adjacent periods; not formatted as an IP address; none of the reserved
/// prefixes `xn--`, `sthree-` (which covers `sthree-configurator`),
/// `amzn-s3-demo-`; none of the reserved suffixes `-s3alias`, `--ol-s3`,
/// `.mrap`, `--x-s3`, `--table-s3`.
///
/// Per the Amazon S3 User Guide, "General purpose bucket naming rules".
pub fn validate_bucket_name(s: &str) -> Result<(), String> {
    let rule = Rule {
        what: "S3 bucket name",
        min: 3,
        max: 63,
        allowed: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-',
        charset: "lowercase letters, digits, periods and hyphens, starting and ending with a letter or digit",
        who: Who::Aws,
    };
    rule.check(s)?;
    let alnum_lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !s.chars().next().is_some_and(alnum_lower) {
        return Err(rule.fail(s, "does not start with a letter or digit"));
    }
    if !s.chars().next_back().is_some_and(alnum_lower) {
        return Err(rule.fail(s, "does not end with a letter or digit"));
    }
    if s.contains("..") {
        return Err(rule.fail(s, "contains two adjacent periods"));
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() == 4 && labels.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit())) {
        return Err(format!("S3 bucket name {} is formatted as an IP address, which AWS does not allow", shown(s)));
    }
    if let Some(p) = BUCKET_RESERVED_PREFIXES.iter().find(|p| s.starts_with(**p)) {
        return Err(format!(
            "S3 bucket name {} starts with \"{p}\", a prefix AWS reserves; bucket names must not start with {}",
            shown(s),
            quoted_list(BUCKET_RESERVED_PREFIXES)
        ));
    }
    if let Some(x) = BUCKET_RESERVED_SUFFIXES.iter().find(|x| s.ends_with(**x)) {
        return Err(format!(
            "S3 bucket name {} ends with \"{x}\", a suffix AWS reserves; bucket names must not end with {}",
            shown(s),
            quoted_list(BUCKET_RESERVED_SUFFIXES)
        ));
    }
    Ok(())
}

fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Shared rule for ELBv2 load balancer and target group names.
fn elb_style_name(s: &str, what: &'static str, charset: &'static str) -> Result<(), String> {
    let rule = Rule { what, min: 1, max: 32, allowed: is_alnum_hyphen, charset, who: Who::Aws };
    rule.check(s)?;
    if s.starts_with('-') {
        return Err(rule.fail(s, "starts with a hyphen"));
    }
    if s.ends_with('-') {
        return Err(rule.fail(s, "ends with a hyphen"));
    }
    Ok(())
}

/// Application Load Balancer name: 1 to 32 characters of letters, digits and
/// hyphens; must not begin or end with a hyphen; must not begin with
/// `internal-`.
///
/// Per the Elastic Load Balancing API reference (version 2015-12-01),
/// CreateLoadBalancer, `Name`.
pub fn validate_lb_name(s: &str) -> Result<(), String> {
    const CHARSET: &str = "letters, digits and hyphens, not starting or ending with a hyphen";
    elb_style_name(s, "load balancer name", CHARSET)?;
    if s.starts_with("internal-") {
        return Err(format!(
            "load balancer name {} starts with \"internal-\", which AWS reserves for the DNS names of internal load balancers; choose a name without that prefix",
            shown(s)
        ));
    }
    Ok(())
}

/// Target group name: 1 to 32 characters of letters, digits and hyphens; must
/// not begin or end with a hyphen.
///
/// Per the Elastic Load Balancing API reference (version 2015-12-01),
/// CreateTargetGroup, `Name`.
pub fn validate_target_group_name(s: &str) -> Result<(), String> {
    elb_style_name(s, "target group name", "letters, digits and hyphens, not starting or ending with a hyphen")
}

/// Security group name (in a VPC): 1 to 255 characters of `a-z A-Z 0-9`,
/// spaces and `._-:/()#,@[]+=&;{}!$*`; must not start with `sg-`. Names are
/// case-insensitive and unique per VPC, and every VPC already has a group
/// called `default`, so that name is rejected in any letter case.
///
/// Per the Amazon EC2 API reference, CreateSecurityGroup, `GroupName`.
pub fn validate_security_group_name(s: &str) -> Result<(), String> {
    let rule = Rule {
        what: "security group name",
        min: 1,
        max: 255,
        allowed: |c| c.is_ascii_alphanumeric() || c == ' ' || "._-:/()#,@[]+=&;{}!$*".contains(c),
        charset: "letters a-z and A-Z, digits, spaces and ._-:/()#,@[]+=&;{}!$*, not starting with \"sg-\"",
        who: Who::Aws,
    };
    rule.check(s)?;
    if s.starts_with("sg-") {
        return Err(rule.fail(s, "starts with \"sg-\", which AWS reserves for security group IDs"));
    }
    if s.eq_ignore_ascii_case("default") {
        return Err(format!(
            "security group name {} is taken: every VPC already has a security group named \"default\" and names are case-insensitive; choose another name",
            shown(s)
        ));
    }
    Ok(())
}

/// Lambda function name: 1 to 64 characters of letters, digits, hyphens and
/// underscores (the plain name, not an ARN).
///
/// Per the AWS Lambda API reference, CreateFunction, `FunctionName`.
pub fn validate_lambda_function_name(s: &str) -> Result<(), String> {
    Rule {
        what: "Lambda function name",
        min: 1,
        max: 64,
        allowed: is_alnum_hyphen_underscore,
        charset: "letters, digits, hyphens and underscores",
        who: Who::Aws,
    }
    .check(s)
}

/// DynamoDB table name: 3 to 255 characters of `a-z A-Z 0-9`, `_`, `-` and
/// `.`.
///
/// Per the Amazon DynamoDB Developer Guide, "Supported data types and naming
/// rules" (Table, index and attribute names), and CreateTable `TableName`.
pub fn validate_dynamodb_table_name(s: &str) -> Result<(), String> {
    Rule {
        what: "DynamoDB table name",
        min: 3,
        max: 255,
        allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
        charset: "letters, digits, underscores, hyphens and periods",
        who: Who::Aws,
    }
    .check(s)
}

/// RDS DB instance identifier: 1 to 63 letters, digits or hyphens; the first
/// character must be a letter; must not end with a hyphen or contain two
/// consecutive hyphens.
///
/// Per the Amazon RDS API reference, CreateDBInstance,
/// `DBInstanceIdentifier`.
pub fn validate_rds_identifier(s: &str) -> Result<(), String> {
    let rule = Rule {
        what: "RDS DB instance identifier",
        min: 1,
        max: 63,
        allowed: is_alnum_hyphen,
        charset: "letters, digits and hyphens, starting with a letter, not ending with a hyphen and without \"--\"",
        who: Who::Aws,
    };
    rule.check(s)?;
    if !starts_with_ascii_letter(s) {
        return Err(rule.fail(s, "does not start with a letter"));
    }
    if s.ends_with('-') {
        return Err(rule.fail(s, "ends with a hyphen"));
    }
    if s.contains("--") {
        return Err(rule.fail(s, "contains two consecutive hyphens"));
    }
    Ok(())
}

/// DB subnet group name: 1 to 255 letters, digits, periods, underscores,
/// spaces or hyphens; must not be `default` (RDS stores the name in
/// lowercase, so any letter case of it is rejected).
///
/// Per the Amazon RDS API reference, CreateDBSubnetGroup,
/// `DBSubnetGroupName`.
pub fn validate_db_subnet_group_name(s: &str) -> Result<(), String> {
    let rule = Rule {
        what: "DB subnet group name",
        min: 1,
        max: 255,
        allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-'),
        charset: "letters, digits, periods, underscores, spaces and hyphens, and not \"default\"",
        who: Who::Aws,
    };
    rule.check(s)?;
    if s.eq_ignore_ascii_case("default") {
        return Err(format!(
            "DB subnet group name {} is reserved by AWS for the default subnet group; choose another name",
            shown(s)
        ));
    }
    Ok(())
}

/// IAM role name: 1 to 64 characters of letters, digits and `+=,.@_-`.
///
/// Per the AWS IAM API reference, CreateRole, `RoleName`, and the IAM User
/// Guide, "IAM and AWS STS quotas" (role name 64 characters).
pub fn validate_iam_role_name(s: &str) -> Result<(), String> {
    Rule {
        what: "IAM role name",
        min: 1,
        max: 64,
        allowed: |c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c),
        charset: "letters, digits and + = , . @ _ -",
        who: Who::Aws,
    }
    .check(s)
}

/// Auto Scaling group name: 1 to 255 printable ASCII characters (codes 33 to
/// 126, so no spaces), excluding the colon.
///
/// Per the Amazon EC2 Auto Scaling API reference, CreateAutoScalingGroup,
/// `AutoScalingGroupName`: "any ASCII character 33 to 126 ... You cannot use a
/// colon (:) in the name."
pub fn validate_asg_name(s: &str) -> Result<(), String> {
    let rule = Rule {
        what: "Auto Scaling group name",
        min: 1,
        max: 255,
        allowed: |c| matches!(c, '!'..='~') && c != ':',
        charset: "printable ASCII characters other than spaces and colons",
        who: Who::Aws,
    };
    if let Some(i) = s.chars().position(|c| c == ':')
        && s.chars().count() <= rule.max
    {
        return Err(format!(
            "Auto Scaling group name {} contains a colon at position {}; AWS does not allow colons in Auto Scaling group names (printable ASCII characters other than spaces and colons are allowed)",
            shown(s),
            i + 1
        ));
    }
    rule.check(s)
}

/// Launch template name: 3 to 128 characters of letters, digits and
/// `( ) . / _ -`.
///
/// Per the Amazon EC2 API reference, CreateLaunchTemplate,
/// `LaunchTemplateName` (pattern `[a-zA-Z0-9\(\)\.\-/_]+`).
pub fn validate_launch_template_name(s: &str) -> Result<(), String> {
    Rule {
        what: "launch template name",
        min: 3,
        max: 128,
        allowed: |c| c.is_ascii_alphanumeric() || "()./_-".contains(c),
        charset: "letters, digits and ( ) . / _ -",
        who: Who::Aws,
    }
    .check(s)
}

/// API Gateway REST API name: 1 to 1,024 printable characters (no control
/// characters) and not only white space.
///
/// The API Gateway API reference (CreateRestApi, `name`) marks the name as
/// required but documents no length limit; 1,024 is infra's own conservative
/// cap, and control characters are rejected because they cannot be shown in
/// the console.
pub fn validate_api_name(s: &str) -> Result<(), String> {
    Rule {
        what: "API name",
        min: 1,
        max: 1024,
        allowed: |c| !c.is_control(),
        charset: "printable characters, no control characters",
        who: Who::Infra,
    }
    .check(s)?;
    if s.trim().is_empty() {
        return Err("API name is blank; infra requires at least one visible character".to_string());
    }
    Ok(())
}

/// API Gateway stage name: 1 to 128 characters of letters, digits, hyphens
/// and underscores.
///
/// Per the Amazon API Gateway API reference, CreateStage, `stageName`
/// ("Stage names can only contain alphanumeric characters, hyphens, and
/// underscores. Maximum length is 128 characters.").
pub fn validate_stage_name(s: &str) -> Result<(), String> {
    Rule {
        what: "stage name",
        min: 1,
        max: 128,
        allowed: is_alnum_hyphen_underscore,
        charset: "letters, digits, hyphens and underscores",
        who: Who::Aws,
    }
    .check(s)
}

// ---------------------------------------------------------------------------
// RDS database name and master user
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EngineFamily {
    Postgres,
    MySql,
}

impl EngineFamily {
    fn parse(engine: &str) -> Result<EngineFamily, String> {
        match engine.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "aurora-postgresql" => Ok(EngineFamily::Postgres),
            "mysql" | "mariadb" | "aurora-mysql" | "aurora" => Ok(EngineFamily::MySql),
            _ => Err(format!(
                "database engine {} is not supported; use \"postgres\", \"mysql\" or \"mariadb\"",
                shown(engine)
            )),
        }
    }

    fn label(self) -> &'static str {
        match self {
            EngineFamily::Postgres => "PostgreSQL",
            EngineFamily::MySql => "MySQL/MariaDB",
        }
    }

    fn reserved_words(self) -> &'static [&'static str] {
        match self {
            EngineFamily::Postgres => POSTGRES_RESERVED,
            EngineFamily::MySql => MYSQL_RESERVED,
        }
    }
}

/// PostgreSQL's fully reserved key words (PostgreSQL documentation, Appendix
/// C, "SQL Key Words", column "PostgreSQL" = reserved).
#[rustfmt::skip]
const POSTGRES_RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case",
    "cast", "check", "collate", "column", "constraint", "create", "current_catalog", "current_date",
    "current_role", "current_time", "current_timestamp", "current_user", "default", "deferrable",
    "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign", "from",
    "grant", "group", "having", "in", "initially", "intersect", "into", "lateral", "leading",
    "limit", "localtime", "localtimestamp", "not", "null", "offset", "on", "only", "or", "order",
    "placing", "primary", "references", "returning", "select", "session_user", "some", "symmetric",
    "system_user", "table", "then", "to", "trailing", "true", "union", "unique", "user", "using",
    "variadic", "when", "where", "window", "with",
];

/// Commonly hit MySQL 8.0 reserved words (MySQL Reference Manual, "Keywords
/// and Reserved Words", entries marked (R)). Not the complete list: it covers
/// the words people plausibly pick as a database or user name.
#[rustfmt::skip]
const MYSQL_RESERVED: &[&str] = &[
    "accessible", "add", "all", "alter", "analyze", "and", "as", "asc", "before", "between",
    "bigint", "binary", "blob", "both", "by", "call", "cascade", "case", "change", "char",
    "character", "check", "collate", "column", "condition", "constraint", "continue", "convert",
    "create", "cross", "cube", "current_date", "current_time", "current_timestamp", "current_user",
    "cursor", "database", "databases", "decimal", "declare", "default", "delete", "desc",
    "describe", "distinct", "div", "double", "drop", "each", "else", "elseif", "exists", "exit",
    "explain", "false", "fetch", "float", "for", "force", "foreign", "from", "fulltext", "function",
    "generated", "get", "grant", "group", "groups", "having", "if", "ignore", "in", "index",
    "inner", "insert", "int", "integer", "interval", "into", "is", "iterate", "join", "key", "keys",
    "kill", "leading", "leave", "left", "like", "limit", "lines", "load", "lock", "long", "loop",
    "match", "natural", "not", "null", "numeric", "of", "on", "option", "or", "order", "out",
    "outer", "partition", "primary", "procedure", "purge", "range", "read", "real", "references",
    "regexp", "release", "rename", "repeat", "replace", "require", "restrict", "return", "revoke",
    "right", "rlike", "row", "rows", "schema", "schemas", "select", "set", "show", "signal",
    "smallint", "spatial", "sql", "starting", "table", "then", "to", "trailing", "trigger", "true",
    "undo", "union", "unique", "unlock", "unsigned", "update", "usage", "use", "using", "values",
    "varchar", "varying", "when", "where", "while", "with", "write", "xor", "zerofill",
];

/// Database names that already exist on a fresh RDS instance, so creating
/// another database with that name fails.
fn existing_databases(family: EngineFamily) -> &'static [&'static str] {
    match family {
        EngineFamily::Postgres => &["postgres", "rdsadmin", "template0", "template1"],
        EngineFamily::MySql => &["mysql", "sys", "information_schema", "performance_schema"],
    }
}

/// User and role names that RDS or the engine itself already uses.
fn existing_users(family: EngineFamily) -> &'static [&'static str] {
    match family {
        EngineFamily::Postgres => &["rdsadmin", "rds_superuser", "rds_replication", "public", "none"],
        EngineFamily::MySql => &["rdsadmin", "rdsrepladmin"],
    }
}

/// Letters, digits and underscores, starting with a letter, with a
/// per-engine maximum length.
fn sql_identifier(s: &str, what: &str, max: usize, family: EngineFamily) -> Result<(), String> {
    let engine_what = format!("{} {what}", family.label());
    let rule = Rule {
        what: &engine_what,
        min: 1,
        max,
        allowed: is_alnum_underscore,
        charset: "letters, digits and underscores, starting with a letter",
        who: Who::Aws,
    };
    rule.check(s)?;
    if !starts_with_ascii_letter(s) {
        return Err(rule.fail(s, "does not start with a letter"));
    }
    let lower = s.to_ascii_lowercase();
    if family.reserved_words().contains(&lower.as_str()) {
        return Err(format!(
            "{what} {} is a reserved word in {}; AWS does not allow reserved words, so choose another name",
            shown(s),
            family.label()
        ));
    }
    Ok(())
}

/// Name of the initial database: letters, digits and underscores, starting
/// with a letter; 1 to 63 characters for PostgreSQL (`postgres`,
/// `aurora-postgresql`), 1 to 64 for MySQL and MariaDB (`mysql`, `mariadb`,
/// `aurora-mysql`); not a reserved word of the engine, and not the name of a
/// database every new instance already has (`postgres`, `rdsadmin`,
/// `template0`, `template1` / `mysql`, `sys`, `information_schema`,
/// `performance_schema`).
///
/// Per the Amazon RDS API reference, CreateDBInstance, `DBName`.
pub fn validate_db_name(s: &str, engine: &str) -> Result<(), String> {
    let family = EngineFamily::parse(engine)?;
    let max = match family {
        EngineFamily::Postgres => 63,
        EngineFamily::MySql => 64,
    };
    sql_identifier(s, "database name", max, family)?;
    let lower = s.to_ascii_lowercase();
    if existing_databases(family).contains(&lower.as_str()) {
        return Err(format!(
            "database name {} is already used by a database that every {} instance has; choose another name",
            shown(s),
            family.label()
        ));
    }
    Ok(())
}

/// Master user name: letters, digits and underscores, starting with a
/// letter; 1 to 16 characters for MySQL and MariaDB, 1 to 63 for PostgreSQL;
/// not a reserved word of the engine and not a user RDS creates itself
/// (`rdsadmin` on every engine, `rdsrepladmin` on MySQL/MariaDB,
/// `rds_superuser`/`rds_replication` roles on PostgreSQL). PostgreSQL also
/// reserves `public`, `none` and every role name starting with `pg_`.
/// (`admin` for MySQL and `postgres` for PostgreSQL are the console defaults
/// and are allowed.)
///
/// Per the Amazon RDS API reference, CreateDBInstance, `MasterUsername`, and
/// the PostgreSQL documentation, "Database Roles".
pub fn validate_master_username(s: &str, engine: &str) -> Result<(), String> {
    let family = EngineFamily::parse(engine)?;
    let max = match family {
        EngineFamily::Postgres => 63,
        EngineFamily::MySql => 16,
    };
    sql_identifier(s, "master username", max, family)?;
    let lower = s.to_ascii_lowercase();
    if existing_users(family).contains(&lower.as_str()) {
        return Err(format!(
            "master username {} is reserved: RDS or {} already uses that name; choose another name",
            shown(s),
            family.label()
        ));
    }
    if family == EngineFamily::Postgres && lower.starts_with("pg_") {
        return Err(format!(
            "master username {} starts with \"pg_\", which PostgreSQL reserves for its own roles; choose another name",
            shown(s)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Instance types and classes
// ---------------------------------------------------------------------------

/// Checks `family.size` shape. Returns a description of the problem.
fn instance_shape_problem(s: &str) -> Option<&'static str> {
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("contains uppercase letters");
    }
    let Some((family, size)) = s.split_once('.') else {
        return Some("has no \".\" between the family and the size");
    };
    if size.contains('.') {
        return Some("has more than one \".\"");
    }
    let family_ok = family.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && family.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && family.chars().any(|c| c.is_ascii_digit())
        && !family.ends_with('-')
        && !family.contains("--");
    if !family_ok {
        return Some(
            "does not have a valid family (a letter followed by letters, digits and hyphens, including a generation number, e.g. \"t3\", \"m7g\", \"c7i-flex\")",
        );
    }
    if !is_valid_size(size) {
        return Some(
            "does not have a valid size (nano, micro, small, medium, large, xlarge, <N>xlarge, metal or metal-<N>xl)",
        );
    }
    None
}

fn is_positive_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && !s.starts_with('0')
}

fn is_valid_size(size: &str) -> bool {
    match size {
        "nano" | "micro" | "small" | "medium" | "large" | "xlarge" | "metal" => true,
        _ => {
            if let Some(n) = size.strip_suffix("xlarge") {
                is_positive_number(n) && n != "1"
            } else if let Some(n) = size.strip_prefix("metal-").and_then(|r| r.strip_suffix("xl")) {
                is_positive_number(n)
            } else {
                false
            }
        }
    }
}

/// EC2 instance type shape: `family.size` in lowercase, such as `t3.micro`,
/// `m7g.2xlarge`, `c7i-flex.large`, `u-6tb1.metal`. This checks the shape
/// only; whether the type is offered in a Region is for AWS to say.
///
/// Per the Amazon EC2 Instance Types guide, "Amazon EC2 instance type naming
/// conventions" (instance family + generation + options, then size).
pub fn validate_instance_type_shape(s: &str) -> Result<(), String> {
    match instance_shape_problem(s) {
        None => Ok(()),
        Some(problem) => Err(format!(
            "instance type {} {problem}; AWS instance types look like \"t3.micro\" or \"m7g.2xlarge\" (family.size, lowercase)",
            shown(s)
        )),
    }
}

/// RDS DB instance class shape: `db.` followed by an instance type shape
/// (`db.t3.micro`, `db.r6g.2xlarge`), or `db.serverless` (Aurora Serverless
/// v2); the optimized-CPU suffix `.tpc<N>.mem<N>x` (`db.r5.2xlarge.tpc2.mem4x`)
/// is accepted too. Shape only.
///
/// Per the Amazon RDS User Guide, "DB instance classes" (DB instance class
/// types and naming).
pub fn validate_db_instance_class_shape(s: &str) -> Result<(), String> {
    let fail = |problem: &str| {
        Err(format!(
            "DB instance class {} {problem}; AWS DB instance classes look like \"db.t3.micro\" or \"db.r6g.large\" (\"db.\" followed by family.size, lowercase)",
            shown(s)
        ))
    };
    let Some(rest) = s.strip_prefix("db.") else {
        return fail("does not start with \"db.\"");
    };
    if rest == "serverless" {
        return Ok(());
    }
    let base = strip_optimized_cpu_suffix(rest).unwrap_or(rest);
    match instance_shape_problem(base) {
        None => Ok(()),
        Some(problem) => fail(problem),
    }
}

/// Strips a trailing `.tpc<N>.mem<N>x` (RDS optimized-CPU classes).
fn strip_optimized_cpu_suffix(s: &str) -> Option<&str> {
    let (head, mem) = s.rsplit_once('.')?;
    let (base, tpc) = head.rsplit_once('.')?;
    let tpc_ok = tpc.strip_prefix("tpc").is_some_and(is_positive_number);
    let mem_ok = mem.strip_prefix("mem").and_then(|m| m.strip_suffix('x')).is_some_and(is_positive_number);
    (tpc_ok && mem_ok).then_some(base)
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/// Lambda memory: 128 to 10,240 MB.
///
/// Per the AWS Lambda API reference, CreateFunction, `MemorySize`
/// (minimum 128, maximum 10240), and the Lambda Developer Guide, "Lambda
/// quotas".
pub fn validate_lambda_memory(mb: i64) -> Result<(), String> {
    if (128..=10240).contains(&mb) {
        Ok(())
    } else {
        Err(format!("Lambda memory of {mb} MB is out of range; AWS allows 128 to 10240 MB"))
    }
}

/// Lambda timeout: 1 to 900 seconds (15 minutes).
///
/// Per the AWS Lambda API reference, CreateFunction, `Timeout` (minimum 1,
/// maximum 900), and the Lambda Developer Guide, "Lambda quotas".
pub fn validate_lambda_timeout(secs: i64) -> Result<(), String> {
    if (1..=900).contains(&secs) {
        Ok(())
    } else {
        Err(format!("Lambda timeout of {secs} seconds is out of range; AWS allows 1 to 900 seconds (15 minutes)"))
    }
}

fn cidr_prefix(prefix: u8, what: &str) -> Result<(), String> {
    if (16..=28).contains(&prefix) {
        Ok(())
    } else {
        let size = if prefix < 16 { "too large" } else { "too small" };
        Err(format!(
            "{what} CIDR block /{prefix} is {size}; AWS allows prefix lengths from /16 (65,536 addresses) to /28 (16 addresses)"
        ))
    }
}

/// VPC IPv4 CIDR block size: prefix length /16 to /28.
///
/// Per the Amazon VPC User Guide, "VPC CIDR blocks" (IPv4 VPC CIDR block
/// size between /16 and /28), and the EC2 API reference, CreateVpc.
pub fn validate_cidr_block_size_vpc(prefix: u8) -> Result<(), String> {
    cidr_prefix(prefix, "VPC")
}

/// Subnet IPv4 CIDR block size: prefix length /16 to /28.
///
/// Per the Amazon VPC User Guide, "Subnet CIDR blocks" (IPv4 subnet size
/// between /16 and /28), and the EC2 API reference, CreateSubnet.
pub fn validate_cidr_block_size_subnet(prefix: u8) -> Result<(), String> {
    cidr_prefix(prefix, "subnet")
}

// ---------------------------------------------------------------------------
// Suggestions
// ---------------------------------------------------------------------------

/// Levenshtein edit distance over characters (insertions, deletions and
/// substitutions each cost 1).
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `input` by Levenshtein distance (compared
/// ignoring letter case), if that distance is at most
/// `max(1, input length / 3)` characters; ties go to the earlier candidate.
/// For "did you mean ...?" hints, e.g. `us-esat-1` -> `us-east-1`.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input_chars: Vec<char> = input.to_lowercase().chars().collect();
    let limit = (input.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for &candidate in candidates {
        let cand_chars: Vec<char> = candidate.to_lowercase().chars().collect();
        let d = levenshtein(&input_chars, &cand_chars);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(c: char, n: usize) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    /// Asserts an error whose message contains every fragment.
    #[track_caller]
    fn err_has(r: Result<(), String>, fragments: &[&str]) {
        let e = r.expect_err("expected an error");
        for f in fragments {
            assert!(e.contains(f), "error {e:?} should contain {f:?}");
        }
    }

    // --- regions ---------------------------------------------------------

    #[test]
    fn regions_lookup_and_azs() {
        assert_eq!(region("us-east-1").unwrap().azs, &["a", "b", "c", "d", "e", "f"]);
        assert_eq!(region_azs("us-west-1").unwrap(), vec!["us-west-1a", "us-west-1c"]);
        assert_eq!(
            region_azs("ap-northeast-1").unwrap(),
            vec!["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]
        );
        assert_eq!(region_azs("eu-west-1").unwrap().len(), 3);
        assert!(region("us-gov-west-1").is_some());
        assert!(region("us-gov-east-1").is_some());
        assert!(region("cn-north-1").is_some());
        assert!(region("cn-northwest-1").is_some());
        assert!(region("us-east-3").is_none());
        assert!(region("US-EAST-1").is_none());
        assert!(region_azs("mars-north-1").is_none());
    }

    #[test]
    fn regions_table_is_consistent() {
        for (i, r) in REGIONS.iter().enumerate() {
            assert!(r.azs.len() >= 2, "{} has fewer than two AZs", r.name);
            assert!(
                r.azs.iter().all(|az| az.len() == 1 && az.chars().all(|c| c.is_ascii_lowercase())),
                "{} has a malformed AZ suffix",
                r.name
            );
            assert!(r.azs.windows(2).all(|w| w[0] < w[1]), "{} AZs not sorted/unique", r.name);
            assert!(REGIONS[i + 1..].iter().all(|o| o.name != r.name), "{} listed twice", r.name);
        }
        assert!(REGIONS.len() >= 38);
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("eu-central-2"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of("us-gov-east-1"), "aws-us-gov");
        for r in REGIONS {
            let p = partition_of(r.name);
            assert!(["aws", "aws-cn", "aws-us-gov"].contains(&p));
        }
    }

    // --- tags ------------------------------------------------------------

    #[test]
    fn tag_key_valid() {
        assert!(validate_tag_key("Name").is_ok());
        assert!(validate_tag_key("team/owner@corp:app_x=1.0+beta-2").is_ok());
        assert!(validate_tag_key("Cost Center").is_ok());
        assert!(validate_tag_key("Kostenstelle-Müller").is_ok());
        assert!(validate_tag_key("プロジェクト").is_ok());
        assert!(validate_tag_key("a").is_ok());
        assert!(validate_tag_key("awsome").is_ok());
        assert!(validate_tag_key("my:aws:key").is_ok());
    }

    #[test]
    fn tag_key_lengths() {
        assert!(validate_tag_key(&rep('k', 128)).is_ok());
        err_has(validate_tag_key(&rep('k', 129)), &["129 characters", "at most 128"]);
        err_has(validate_tag_key(""), &["tag key is empty", "1 to 128"]);
        // Counted in characters, not bytes: 128 two-byte characters pass.
        assert!(validate_tag_key(&rep('é', 128)).is_ok());
        assert!(validate_tag_key(&rep('é', 129)).is_err());
    }

    #[test]
    fn tag_key_forbidden() {
        err_has(validate_tag_key("aws:cloudformation"), &["\"aws:\"", "reserves"]);
        err_has(validate_tag_key("AWS:foo"), &["\"aws:\""]);
        err_has(validate_tag_key("Aws:foo"), &["\"aws:\""]);
        err_has(validate_tag_key("cost*center"), &["\"*\"", "position 5"]);
        err_has(validate_tag_key("a,b"), &["\",\""]);
        err_has(validate_tag_key("tab\there"), &["U+0009"]);
        err_has(validate_tag_key("line\nbreak"), &["U+000A"]);
        err_has(validate_tag_key("q\"uote"), &["double quote"]);
        err_has(validate_tag_key("emoji🙂"), &["🙂"]);
    }

    #[test]
    fn tag_value() {
        assert!(validate_tag_value("").is_ok());
        assert!(validate_tag_value("prod").is_ok());
        assert!(validate_tag_value("aws:allowed-in-values").is_ok());
        assert!(validate_tag_value("Ünïcödé 123 +-=._:/@").is_ok());
        assert!(validate_tag_value(&rep('v', 256)).is_ok());
        assert!(validate_tag_value(&rep('ß', 256)).is_ok());
        err_has(validate_tag_value(&rep('v', 257)), &["257 characters", "at most 256"]);
        err_has(validate_tag_value("50%"), &["\"%\"", "position 3"]);
        err_has(validate_tag_value("x\u{7}"), &["U+0007"]);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let e = validate_tag_value(&rep('v', 1000)).unwrap_err();
        assert!(e.contains("...\""), "{e}");
        assert!(e.len() < 200, "{e}");
    }

    // --- stack name ------------------------------------------------------

    #[test]
    fn stack_name() {
        assert!(validate_stack_name("shop").is_ok());
        assert!(validate_stack_name("a").is_ok());
        assert!(validate_stack_name("web-2-prod").is_ok());
        assert!(validate_stack_name(&rep('a', 24)).is_ok());
        err_has(validate_stack_name(&rep('a', 25)), &["25 characters", "infra allows at most 24"]);
        err_has(validate_stack_name(""), &["stack name is empty"]);
        err_has(validate_stack_name("Shop"), &["\"S\"", "uppercase"]);
        err_has(validate_stack_name("my_shop"), &["\"_\""]);
        err_has(validate_stack_name("my.shop"), &["\".\""]);
        err_has(validate_stack_name("1shop"), &["does not start with a letter"]);
        err_has(validate_stack_name("-shop"), &["does not start with a letter"]);
        err_has(validate_stack_name("shop-"), &["ends with a hyphen"]);
        err_has(validate_stack_name("my--shop"), &["two consecutive hyphens"]);
    }

    // --- S3 --------------------------------------------------------------

    #[test]
    fn bucket_valid() {
        assert!(validate_bucket_name("my-shop-assets").is_ok());
        assert!(validate_bucket_name("abc").is_ok());
        assert!(validate_bucket_name("logs.example.com").is_ok());
        assert!(validate_bucket_name("1bucket9").is_ok());
        assert!(validate_bucket_name("192.168.5.4x").is_ok());
        assert!(validate_bucket_name("1.2.3").is_ok());
        assert!(validate_bucket_name("my-xn--bucket").is_ok());
        assert!(validate_bucket_name("s3alias-bucket").is_ok());
        assert!(validate_bucket_name(&rep('b', 63)).is_ok());
    }

    #[test]
    fn bucket_lengths() {
        err_has(validate_bucket_name(&rep('b', 64)), &["64 characters", "at most 63"]);
        err_has(validate_bucket_name("ab"), &["2 characters", "at least 3"]);
        err_has(validate_bucket_name("a"), &["1 character;"]);
        err_has(validate_bucket_name(""), &["is empty", "3 to 63"]);
    }

    #[test]
    fn bucket_forbidden() {
        err_has(validate_bucket_name("My-Bucket"), &["uppercase"]);
        err_has(validate_bucket_name("my_bucket"), &["\"_\""]);
        err_has(validate_bucket_name("my bucket"), &["a space"]);
        err_has(validate_bucket_name("-bucket"), &["does not start with a letter or digit"]);
        err_has(validate_bucket_name(".bucket"), &["does not start with a letter or digit"]);
        err_has(validate_bucket_name("bucket-"), &["does not end with a letter or digit"]);
        err_has(validate_bucket_name("bucket."), &["does not end with a letter or digit"]);
        err_has(validate_bucket_name("my..bucket"), &["two adjacent periods"]);
        err_has(validate_bucket_name("192.168.5.4"), &["IP address"]);
        err_has(validate_bucket_name("10.0.0.1"), &["IP address"]);
        err_has(validate_bucket_name("xn--bucket"), &["\"xn--\""]);
        err_has(validate_bucket_name("sthree-bucket"), &["\"sthree-\""]);
        err_has(validate_bucket_name("sthree-configurator-x"), &["\"sthree-\""]);
        err_has(validate_bucket_name("amzn-s3-demo-bucket"), &["\"amzn-s3-demo-\""]);
        err_has(validate_bucket_name("bucket-s3alias"), &["\"-s3alias\""]);
        err_has(validate_bucket_name("bucket--ol-s3"), &["\"--ol-s3\""]);
        err_has(validate_bucket_name("bucket.mrap"), &["\".mrap\""]);
        err_has(validate_bucket_name("bucket--x-s3"), &["\"--x-s3\""]);
        err_has(validate_bucket_name("bucket--table-s3"), &["\"--table-s3\""]);
    }

    // --- ELB -------------------------------------------------------------

    #[test]
    fn lb_name() {
        assert!(validate_lb_name("shop-alb").is_ok());
        assert!(validate_lb_name("A").is_ok());
        assert!(validate_lb_name("Shop1").is_ok());
        assert!(validate_lb_name("my-internal-lb").is_ok());
        assert!(validate_lb_name(&rep('x', 32)).is_ok());
        err_has(
            validate_lb_name(&rep('x', 40)),
            &["load balancer name \"", "is 40 characters; AWS allows at most 32 (letters, digits and hyphens"],
        );
        assert!(validate_lb_name(&rep('x', 33)).is_err());
        err_has(validate_lb_name(""), &["is empty"]);
        err_has(validate_lb_name("-shop"), &["starts with a hyphen"]);
        err_has(validate_lb_name("shop-"), &["ends with a hyphen"]);
        err_has(validate_lb_name("shop_alb"), &["\"_\""]);
        err_has(validate_lb_name("shop.alb"), &["\".\""]);
        err_has(validate_lb_name("internal-shop"), &["\"internal-\""]);
    }

    #[test]
    fn target_group_name() {
        assert!(validate_target_group_name("shop-tg").is_ok());
        assert!(validate_target_group_name("t").is_ok());
        assert!(validate_target_group_name("internal-tg").is_ok());
        assert!(validate_target_group_name(&rep('t', 32)).is_ok());
        err_has(validate_target_group_name(&rep('t', 33)), &["33 characters", "at most 32"]);
        err_has(validate_target_group_name(""), &["is empty"]);
        err_has(validate_target_group_name("-tg"), &["starts with a hyphen"]);
        err_has(validate_target_group_name("tg-"), &["ends with a hyphen"]);
        err_has(validate_target_group_name("tg 1"), &["a space"]);
    }

    // --- EC2 -------------------------------------------------------------

    #[test]
    fn security_group_name() {
        assert!(validate_security_group_name("shop-web").is_ok());
        assert!(validate_security_group_name("Web SG (prod) #1 ._-:/,@[]+=&;{}!$*").is_ok());
        assert!(validate_security_group_name("SG-uppercase-is-ok").is_ok());
        assert!(validate_security_group_name("my-sg-").is_ok());
        assert!(validate_security_group_name("defaults").is_ok());
        assert!(validate_security_group_name(&rep('s', 255)).is_ok());
        err_has(validate_security_group_name(&rep('s', 256)), &["256 characters", "at most 255"]);
        err_has(validate_security_group_name(""), &["is empty"]);
        err_has(validate_security_group_name("sg-web"), &["\"sg-\""]);
        err_has(validate_security_group_name("default"), &["\"default\""]);
        err_has(validate_security_group_name("Default"), &["\"default\""]);
        err_has(validate_security_group_name("web%"), &["\"%\""]);
        err_has(validate_security_group_name("web\"sg"), &["double quote"]);
        err_has(validate_security_group_name("wéb"), &["\"é\""]);
        err_has(validate_security_group_name("web\tsg"), &["U+0009"]);
    }

    #[test]
    fn asg_name() {
        assert!(validate_asg_name("shop-web-asg").is_ok());
        assert!(validate_asg_name("a!#$%&'()*+,-./;<=>?@[]^_`{|}~").is_ok());
        assert!(validate_asg_name("x").is_ok());
        assert!(validate_asg_name(&rep('a', 255)).is_ok());
        err_has(validate_asg_name(&rep('a', 256)), &["256 characters", "at most 255"]);
        err_has(validate_asg_name(&format!("{}:", rep('a', 300))), &["301 characters"]);
        err_has(validate_asg_name(""), &["is empty"]);
        err_has(validate_asg_name("shop:web"), &["colon", "position 5"]);
        err_has(validate_asg_name("shop web"), &["a space"]);
        err_has(validate_asg_name("shöp"), &["\"ö\""]);
        err_has(validate_asg_name("shop\n"), &["U+000A"]);
    }

    #[test]
    fn launch_template_name() {
        assert!(validate_launch_template_name("shop-web").is_ok());
        assert!(validate_launch_template_name("web(v1)/a_b.c-d").is_ok());
        assert!(validate_launch_template_name("abc").is_ok());
        assert!(validate_launch_template_name(&rep('l', 128)).is_ok());
        err_has(validate_launch_template_name(&rep('l', 129)), &["129 characters", "at most 128"]);
        err_has(validate_launch_template_name("ab"), &["2 characters", "at least 3"]);
        err_has(validate_launch_template_name(""), &["is empty", "3 to 128"]);
        err_has(validate_launch_template_name("web lt"), &["a space"]);
        err_has(validate_launch_template_name("web:lt"), &["\":\""]);
    }

    // --- Lambda, DynamoDB, IAM, API Gateway ------------------------------

    #[test]
    fn lambda_function_name() {
        assert!(validate_lambda_function_name("shop-api_handler1").is_ok());
        assert!(validate_lambda_function_name("f").is_ok());
        assert!(validate_lambda_function_name(&rep('f', 64)).is_ok());
        err_has(validate_lambda_function_name(&rep('f', 65)), &["65 characters", "at most 64"]);
        err_has(validate_lambda_function_name(""), &["is empty"]);
        err_has(validate_lambda_function_name("shop.api"), &["\".\""]);
        err_has(validate_lambda_function_name("arn:aws:lambda"), &["\":\""]);
        err_has(validate_lambda_function_name("shop api"), &["a space"]);
    }

    #[test]
    fn dynamodb_table_name() {
        assert!(validate_dynamodb_table_name("Shop_Orders-v1.0").is_ok());
        assert!(validate_dynamodb_table_name("abc").is_ok());
        assert!(validate_dynamodb_table_name(&rep('d', 255)).is_ok());
        err_has(validate_dynamodb_table_name(&rep('d', 256)), &["256 characters", "at most 255"]);
        err_has(validate_dynamodb_table_name("ab"), &["at least 3"]);
        err_has(validate_dynamodb_table_name(""), &["is empty", "3 to 255"]);
        err_has(validate_dynamodb_table_name("orders table"), &["a space"]);
        err_has(validate_dynamodb_table_name("orders/2024"), &["\"/\""]);
    }

    #[test]
    fn iam_role_name() {
        assert!(validate_iam_role_name("shop-web+role=1,a.b@c_d").is_ok());
        assert!(validate_iam_role_name("r").is_ok());
        assert!(validate_iam_role_name(&rep('r', 64)).is_ok());
        err_has(validate_iam_role_name(&rep('r', 65)), &["65 characters", "at most 64"]);
        err_has(validate_iam_role_name(""), &["is empty"]);
        err_has(validate_iam_role_name("shop/role"), &["\"/\""]);
        err_has(validate_iam_role_name("shop role"), &["a space"]);
        err_has(validate_iam_role_name("shop:role"), &["\":\""]);
    }

    #[test]
    fn api_name() {
        assert!(validate_api_name("Shop API (prod) — v2!").is_ok());
        assert!(validate_api_name("a").is_ok());
        assert!(validate_api_name(&rep('a', 1024)).is_ok());
        err_has(validate_api_name(&rep('a', 1025)), &["1025 characters", "at most 1024"]);
        err_has(validate_api_name(""), &["is empty"]);
        err_has(validate_api_name("   "), &["blank"]);
        err_has(validate_api_name("shop\napi"), &["U+000A"]);
    }

    #[test]
    fn stage_name() {
        assert!(validate_stage_name("prod").is_ok());
        assert!(validate_stage_name("v1_beta-2").is_ok());
        assert!(validate_stage_name(&rep('s', 128)).is_ok());
        err_has(validate_stage_name(&rep('s', 129)), &["129 characters", "at most 128"]);
        err_has(validate_stage_name(""), &["is empty"]);
        err_has(validate_stage_name("v1.0"), &["\".\""]);
        err_has(validate_stage_name("my stage"), &["a space"]);
    }

    // --- RDS -------------------------------------------------------------

    #[test]
    fn rds_identifier() {
        assert!(validate_rds_identifier("shop-db-1").is_ok());
        assert!(validate_rds_identifier("d").is_ok());
        assert!(validate_rds_identifier("ShopDB").is_ok());
        let max = format!("d{}", rep('1', 62));
        assert!(validate_rds_identifier(&max).is_ok());
        err_has(validate_rds_identifier(&format!("{max}2")), &["64 characters", "at most 63"]);
        err_has(validate_rds_identifier(""), &["is empty"]);
        err_has(validate_rds_identifier("1db"), &["does not start with a letter"]);
        err_has(validate_rds_identifier("-db"), &["does not start with a letter"]);
        err_has(validate_rds_identifier("db-"), &["ends with a hyphen"]);
        err_has(validate_rds_identifier("shop--db"), &["two consecutive hyphens"]);
        err_has(validate_rds_identifier("shop_db"), &["\"_\""]);
    }

    #[test]
    fn db_subnet_group_name() {
        assert!(validate_db_subnet_group_name("shop db_subnets.v1-a").is_ok());
        assert!(validate_db_subnet_group_name("s").is_ok());
        assert!(validate_db_subnet_group_name("default-shop").is_ok());
        assert!(validate_db_subnet_group_name(&rep('s', 255)).is_ok());
        err_has(validate_db_subnet_group_name(&rep('s', 256)), &["256 characters", "at most 255"]);
        err_has(validate_db_subnet_group_name(""), &["is empty"]);
        err_has(validate_db_subnet_group_name("default"), &["reserved"]);
        err_has(validate_db_subnet_group_name("DEFAULT"), &["reserved"]);
        err_has(validate_db_subnet_group_name("shop/db"), &["\"/\""]);
    }

    #[test]
    fn db_name_postgres() {
        assert!(validate_db_name("shop", "postgres").is_ok());
        assert!(validate_db_name("Shop_2024", "aurora-postgresql").is_ok());
        assert!(validate_db_name("users", "postgres").is_ok());
        let max = format!("d{}", rep('b', 62));
        assert!(validate_db_name(&max, "postgres").is_ok());
        err_has(validate_db_name(&format!("{max}b"), "postgres"), &["64 characters", "at most 63", "PostgreSQL"]);
        err_has(validate_db_name("", "postgres"), &["is empty"]);
        err_has(validate_db_name("1shop", "postgres"), &["does not start with a letter"]);
        err_has(validate_db_name("_shop", "postgres"), &["does not start with a letter"]);
        err_has(validate_db_name("shop-db", "postgres"), &["\"-\""]);
        err_has(validate_db_name("user", "postgres"), &["reserved word", "PostgreSQL"]);
        err_has(validate_db_name("Select", "postgres"), &["reserved word"]);
        err_has(validate_db_name("postgres", "postgres"), &["already used"]);
        err_has(validate_db_name("template1", "postgres"), &["already used"]);
        err_has(validate_db_name("rdsadmin", "postgres"), &["already used"]);
    }

    #[test]
    fn db_name_mysql() {
        assert!(validate_db_name("shop", "mysql").is_ok());
        assert!(validate_db_name("shop", "mariadb").is_ok());
        assert!(validate_db_name("user", "mysql").is_ok());
        assert!(validate_db_name("postgres", "mysql").is_ok());
        let max = format!("d{}", rep('b', 63));
        assert!(validate_db_name(&max, "mysql").is_ok());
        err_has(validate_db_name(&format!("{max}b"), "mysql"), &["65 characters", "at most 64", "MySQL"]);
        err_has(validate_db_name("order", "mysql"), &["reserved word"]);
        err_has(validate_db_name("DATABASE", "mariadb"), &["reserved word"]);
        err_has(validate_db_name("mysql", "mysql"), &["already used"]);
        err_has(validate_db_name("information_schema", "mysql"), &["already used"]);
        err_has(validate_db_name("shop$", "mysql"), &["\"$\""]);
    }

    #[test]
    fn db_name_unknown_engine() {
        err_has(validate_db_name("shop", "oracle-ee"), &["engine \"oracle-ee\" is not supported"]);
        err_has(validate_master_username("admin", ""), &["not supported"]);
    }

    #[test]
    fn master_username_mysql() {
        assert!(validate_master_username("admin", "mysql").is_ok());
        assert!(validate_master_username("shop_admin", "mariadb").is_ok());
        assert!(validate_master_username("a", "mysql").is_ok());
        assert!(validate_master_username(&rep('a', 16), "mysql").is_ok());
        err_has(validate_master_username(&rep('a', 17), "mysql"), &["17 characters", "at most 16"]);
        err_has(validate_master_username("", "mysql"), &["is empty"]);
        err_has(validate_master_username("1admin", "mysql"), &["does not start with a letter"]);
        err_has(validate_master_username("shop-admin", "mysql"), &["\"-\""]);
        err_has(validate_master_username("rdsadmin", "mysql"), &["reserved"]);
        err_has(validate_master_username("RDSADMIN", "mariadb"), &["reserved"]);
        err_has(validate_master_username("rdsrepladmin", "mysql"), &["reserved"]);
        err_has(validate_master_username("select", "mysql"), &["reserved word"]);
    }

    #[test]
    fn master_username_postgres() {
        assert!(validate_master_username("postgres", "postgres").is_ok());
        assert!(validate_master_username("shop_admin", "postgres").is_ok());
        assert!(validate_master_username(&rep('p', 63), "postgres").is_ok());
        err_has(validate_master_username(&rep('p', 64), "postgres"), &["64 characters", "at most 63"]);
        err_has(validate_master_username("rdsadmin", "postgres"), &["reserved"]);
        err_has(validate_master_username("rds_superuser", "postgres"), &["reserved"]);
        err_has(validate_master_username("public", "postgres"), &["reserved"]);
        err_has(validate_master_username("pg_admin", "postgres"), &["\"pg_\""]);
        err_has(validate_master_username("user", "postgres"), &["reserved word"]);
        err_has(validate_master_username("_admin", "postgres"), &["does not start with a letter"]);
    }

    // --- instance types --------------------------------------------------

    #[test]
    fn instance_type_shape() {
        for ok in [
            "t3.micro",
            "t3.nano",
            "t4g.small",
            "m5.large",
            "m5.xlarge",
            "m7g.2xlarge",
            "c5n.18xlarge",
            "x2iedn.32xlarge",
            "c7i-flex.large",
            "u-6tb1.metal",
            "u7i-12tb.224xlarge",
            "m7i.metal-24xl",
            "mac2-m2pro.metal",
            "a1.medium",
        ] {
            assert!(validate_instance_type_shape(ok).is_ok(), "{ok} should pass");
        }
        err_has(validate_instance_type_shape("T3.micro"), &["uppercase"]);
        err_has(validate_instance_type_shape("t3micro"), &["no \".\""]);
        err_has(validate_instance_type_shape("t3.micro.x"), &["more than one"]);
        err_has(validate_instance_type_shape("t3.mirco"), &["valid size"]);
        err_has(validate_instance_type_shape("t3.1xlarge"), &["valid size"]);
        err_has(validate_instance_type_shape("t3.02xlarge"), &["valid size"]);
        err_has(validate_instance_type_shape("t3.xxlarge"), &["valid size"]);
        err_has(validate_instance_type_shape("t3."), &["valid size"]);
        err_has(validate_instance_type_shape(".micro"), &["valid family"]);
        err_has(validate_instance_type_shape("t.micro"), &["valid family"]);
        err_has(validate_instance_type_shape("3t.micro"), &["valid family"]);
        err_has(validate_instance_type_shape("t3-.micro"), &["valid family"]);
        err_has(validate_instance_type_shape("t_3.micro"), &["valid family"]);
        err_has(validate_instance_type_shape(""), &["no \".\""]);
        err_has(validate_instance_type_shape("db.t3.micro"), &["more than one"]);
    }

    #[test]
    fn db_instance_class_shape() {
        for ok in [
            "db.t3.micro",
            "db.t4g.medium",
            "db.r6g.large",
            "db.m6i.2xlarge",
            "db.x2iedn.metal",
            "db.serverless",
            "db.r5.2xlarge.tpc2.mem4x",
        ] {
            assert!(validate_db_instance_class_shape(ok).is_ok(), "{ok} should pass");
        }
        err_has(validate_db_instance_class_shape("t3.micro"), &["does not start with \"db.\""]);
        err_has(validate_db_instance_class_shape("DB.t3.micro"), &["does not start with \"db.\""]);
        err_has(validate_db_instance_class_shape("db.T3.micro"), &["uppercase"]);
        err_has(validate_db_instance_class_shape("db.t3"), &["no \".\""]);
        err_has(validate_db_instance_class_shape("db.t3.mcro"), &["valid size"]);
        err_has(validate_db_instance_class_shape("db."), &["no \".\""]);
        err_has(validate_db_instance_class_shape("db.r5.large.tpc2"), &["more than one"]);
    }

    // --- numbers ---------------------------------------------------------

    #[test]
    fn lambda_memory() {
        assert!(validate_lambda_memory(128).is_ok());
        assert!(validate_lambda_memory(1769).is_ok());
        assert!(validate_lambda_memory(10240).is_ok());
        err_has(validate_lambda_memory(127), &["127 MB", "128 to 10240"]);
        err_has(validate_lambda_memory(10241), &["10241 MB"]);
        assert!(validate_lambda_memory(0).is_err());
        assert!(validate_lambda_memory(-512).is_err());
    }

    #[test]
    fn lambda_timeout() {
        assert!(validate_lambda_timeout(1).is_ok());
        assert!(validate_lambda_timeout(30).is_ok());
        assert!(validate_lambda_timeout(900).is_ok());
        err_has(validate_lambda_timeout(0), &["0 seconds", "1 to 900"]);
        err_has(validate_lambda_timeout(901), &["901 seconds"]);
        assert!(validate_lambda_timeout(-1).is_err());
    }

    #[test]
    fn cidr_sizes() {
        for p in 16..=28 {
            assert!(validate_cidr_block_size_vpc(p).is_ok());
            assert!(validate_cidr_block_size_subnet(p).is_ok());
        }
        err_has(validate_cidr_block_size_vpc(15), &["VPC CIDR block /15 is too large", "/16", "/28"]);
        err_has(validate_cidr_block_size_vpc(29), &["/29 is too small"]);
        err_has(validate_cidr_block_size_subnet(15), &["subnet CIDR block /15 is too large"]);
        err_has(validate_cidr_block_size_subnet(29), &["subnet CIDR block /29 is too small"]);
        assert!(validate_cidr_block_size_vpc(0).is_err());
        assert!(validate_cidr_block_size_subnet(32).is_err());
        assert!(validate_cidr_block_size_subnet(255).is_err());
    }

    // --- did_you_mean ----------------------------------------------------

    #[test]
    fn levenshtein_distances() {
        let d = |a: &str, b: &str| levenshtein(&a.chars().collect::<Vec<_>>(), &b.chars().collect::<Vec<_>>());
        assert_eq!(d("", ""), 0);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("flaw", "lawn"), 2);
        assert_eq!(d("us-esat-1", "us-east-1"), 2);
        assert_eq!(d("é", "e"), 1);
    }

    #[test]
    fn suggestions() {
        let regions: Vec<&str> = REGIONS.iter().map(|r| r.name).collect();
        assert_eq!(did_you_mean("us-esat-1", &regions), Some("us-east-1"));
        assert_eq!(did_you_mean("eu-west-l", &regions), Some("eu-west-1"));
        assert_eq!(did_you_mean("US-EAST-1", &regions), Some("us-east-1"));
        assert_eq!(did_you_mean("us-east-1", &regions), Some("us-east-1"));
        assert_eq!(did_you_mean("atlantis-1", &regions), None);
        // "mars-north-1" is 4 edits from "eu-north-1", within its limit of 12 / 3.
        assert_eq!(did_you_mean("mars-north-1", &regions), Some("eu-north-1"));
        assert_eq!(did_you_mean("anything", &[]), None);

        let engines = ["postgres", "mysql", "mariadb"];
        assert_eq!(did_you_mean("postgress", &engines), Some("postgres"));
        assert_eq!(did_you_mean("mysq", &engines), Some("mysql"));
        assert_eq!(did_you_mean("oracle", &engines), None);

        // Short inputs allow a distance of 1 only.
        assert_eq!(did_you_mean("ab", &["ac"]), Some("ac"));
        assert_eq!(did_you_mean("ab", &["cd"]), None);
        assert_eq!(did_you_mean("", &["a"]), Some("a"));
        assert_eq!(did_you_mean("", &["ab"]), None);
        // 9 characters -> limit 3.
        assert_eq!(did_you_mean("abcdefghi", &["abcdefxyz"]), Some("abcdefxyz"));
        assert_eq!(did_you_mean("abcdefghi", &["abcdewxyz"]), None);
        // Ties go to the earlier candidate; a closer one wins.
        assert_eq!(did_you_mean("cat", &["bat", "hat"]), Some("bat"));
        assert_eq!(did_you_mean("cats", &["bat", "cat"]), Some("cat"));
    }
}
