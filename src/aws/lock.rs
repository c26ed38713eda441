//! The stack lock: two applies or destroys of one stack never run at once,
//! from any machines. It is an S3 object created with a conditional write
//! (`If-None-Match: *`), so exactly one writer wins; its body records who
//! holds it. It lives in a per-account, per-region bucket the tool creates
//! (private, encrypted), never tagged with a stack so no destroy removes it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde::{Deserialize, Serialize};

use super::Aws;
use super::errors::AwsResultExt;

/// Who holds a lock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub stack: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub since: String,
    pub tool_version: String,
    /// Which process on which running system holds it (Linux), so that a
    /// rerun on the same machine after the holder was killed (`kill -9`, a
    /// cancelled CI job) can tell the lock is stale and take it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessId>,
}

/// A process, identified beyond its pid: the kernel's boot id and pid
/// namespace say "this very system" (not another machine or container with
/// the same host name), the start time rules out a reused pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub boot_id: String,
    pub pid_namespace: String,
    /// Start time in clock ticks since boot (`/proc/PID/stat`, field 22).
    pub start_ticks: u64,
}

impl ProcessId {
    /// This process, where `/proc` tells (Linux); `None` elsewhere.
    fn current() -> Option<ProcessId> {
        Some(ProcessId {
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?.trim().to_string(),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid").ok()?.to_string_lossy().into_owned(),
            start_ticks: start_ticks(std::process::id())?,
        })
    }
}

/// Field 22 of `/proc/PID/stat` (after the parenthesised command name, which
/// may itself hold spaces and parentheses).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

impl LockInfo {
    /// Whether the holder was a process of this very system that is no longer
    /// running. Only then is taking the lock over safe without asking.
    pub fn holder_is_gone(&self) -> bool {
        let (Some(theirs), Some(ours)) = (&self.process, ProcessId::current()) else {
            return false;
        };
        theirs.boot_id == ours.boot_id
            && theirs.pid_namespace == ours.pid_namespace
            && start_ticks(self.pid) != Some(theirs.start_ticks)
    }
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} (pid {}, `{}`, since {})", self.user, self.host, self.pid, self.command, self.since)
    }
}

/// The lock is held by someone else.
#[derive(Debug)]
pub struct LockHeld(pub LockInfo);

impl std::fmt::Display for LockHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stack \"{}\" is locked by {}. Wait for that run to finish (or pass --lock-timeout), or, if it is gone, run `infra unlock`",
            self.0.stack, self.0
        )
    }
}

impl std::error::Error for LockHeld {}

/// A lock we hold; release it with [`Aws::release`].
pub struct Lock {
    bucket: String,
    key: String,
    id: String,
}

impl Aws {
    fn lock_key(&self) -> String {
        format!("locks/{}.json", self.stack)
    }

    /// The name of the lock bucket of this account and region.
    pub async fn lock_bucket_name(&self) -> Result<String> {
        let (account, _) = self.identity().await?;
        Ok(format!("infra-locks-{account}-{}", self.region))
    }

    /// The lock bucket, created on first use.
    async fn lock_bucket(&self) -> Result<String> {
        let bucket = self.lock_bucket_name().await?;
        match self.s3.head_bucket().bucket(&bucket).send().await.aws() {
            Ok(_) => return Ok(bucket),
            Err(e) if e.not_found() || e.status == Some(404) => {}
            Err(e) => {
                return Err(anyhow::anyhow!(e).context(format!("checking the lock bucket {bucket}")));
            }
        }
        let mut create = self.s3.create_bucket().bucket(&bucket);
        if self.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match create.send().await.aws() {
            Ok(_) => {}
            Err(e) if e.is("BucketAlreadyOwnedByYou") => return Ok(bucket),
            Err(e) => {
                return Err(anyhow::anyhow!(e).context(format!("creating the lock bucket {bucket}")));
            }
        }
        self.s3
            .put_public_access_block()
            .bucket(&bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .aws()
            .context("blocking public access to the lock bucket")?;
        self.s3
            .put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(ServerSideEncryption::Aes256)
                                    .build()?,
                            )
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await
            .aws()
            .context("encrypting the lock bucket")?;
        // Versioned (a lock overwritten or deleted by hand can be told
        // apart and recovered), old versions expired after a month, and
        // TLS only, as the site bucket.
        self.s3
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .aws()
            .context("versioning the lock bucket")?;
        self.s3
            .put_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(
                        LifecycleRule::builder()
                            .id("expire-old-lock-versions")
                            .status(ExpirationStatus::Enabled)
                            .filter(LifecycleRuleFilter::builder().prefix("").build())
                            .noncurrent_version_expiration(
                                NoncurrentVersionExpiration::builder().noncurrent_days(30).build(),
                            )
                            .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
                            .build()?,
                    )
                    .build()?,
            )
            .send()
            .await
            .aws()
            .context("setting the lock bucket's lifecycle")?;
        let arn = format!("arn:{}:s3:::{bucket}", self.identity().await?.1);
        let policy =
            serde_json::json!({ "Version": "2012-10-17", "Statement": [super::s3::bucket_policy::tls_only(&arn)] });
        self.s3
            .put_bucket_policy()
            .bucket(&bucket)
            .policy(policy.to_string())
            .send()
            .await
            .aws()
            .context("making the lock bucket TLS-only")?;
        Ok(bucket)
    }

    /// Who holds the lock now, if anyone.
    pub async fn lock_holder(&self) -> Result<Option<LockInfo>> {
        let bucket = self.lock_bucket().await?;
        self.read_lock(&bucket).await
    }

    async fn read_lock(&self, bucket: &str) -> Result<Option<LockInfo>> {
        Ok(self.read_lock_tagged(bucket).await?.map(|(l, _)| l))
    }

    /// The lock and its ETag.
    async fn read_lock_tagged(&self, bucket: &str) -> Result<Option<(LockInfo, Option<String>)>> {
        match self.s3.get_object().bucket(bucket).key(self.lock_key()).send().await {
            Ok(o) => {
                let etag = o.e_tag().map(str::to_string);
                let body = o.body.collect().await.context("reading the lock")?.into_bytes();
                Ok(Some((serde_json::from_slice(&body).context("the lock object is not a lock")?, etag)))
            }
            Err(e) => {
                let e = super::errors::describe(&e);
                if e.not_found() { Ok(None) } else { Err(anyhow::anyhow!(e).context("reading the lock")) }
            }
        }
    }

    /// Takes the stack's lock, waiting up to `timeout` for a holder to let go.
    /// `waiting` is called once when the lock is found held.
    pub async fn acquire(&self, command: &str, timeout: Duration, waiting: &dyn Fn(&LockInfo)) -> Result<Lock> {
        let bucket = self.lock_bucket().await?;
        let info = LockInfo {
            id: lock_id(),
            stack: self.stack.clone(),
            user: std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into()),
            host: hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into()),
            pid: std::process::id(),
            command: command.to_string(),
            since: crate::engine::plan::now_rfc3339(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            process: ProcessId::current(),
        };
        let body = serde_json::to_vec_pretty(&info)?;
        let start = Instant::now();
        let mut delay = Duration::from_millis(250);
        let mut told = false;
        loop {
            let put = self
                .s3
                .put_object()
                .bucket(&bucket)
                .key(self.lock_key())
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .aws();
            match put {
                Ok(_) => {
                    return Ok(Lock { bucket, key: self.lock_key(), id: info.id });
                }
                Err(e)
                    if e.status == Some(412)
                        || e.is("PreconditionFailed")
                        || e.status == Some(409)
                        || e.is("ConditionalRequestConflict") =>
                {
                    let Some((holder, etag)) = self.read_lock_tagged(&bucket).await? else {
                        continue;
                    };
                    if holder.id == info.id {
                        // Our own write whose response was lost.
                        return Ok(Lock { bucket, key: self.lock_key(), id: info.id });
                    }
                    if holder.holder_is_gone() {
                        // Killed on this machine (SIGKILL, a cancelled job):
                        // its lock is stale. Remove exactly that lock (the
                        // ETag condition keeps a lock another rerun has just
                        // taken), then try again.
                        eprintln!(
                            "The stack lock is held by {holder}, which is no longer running on this machine: taking it over."
                        );
                        let mut del = self.s3.delete_object().bucket(&bucket).key(self.lock_key());
                        if let Some(tag) = &etag {
                            del = del.if_match(tag);
                        }
                        match del.send().await.aws() {
                            Ok(_) => {}
                            Err(e) if e.status == Some(412) || e.not_found() => {}
                            Err(e) => {
                                return Err(anyhow::anyhow!(e).context("removing a stale stack lock"));
                            }
                        }
                        continue;
                    }
                    if start.elapsed() >= timeout {
                        return Err(LockHeld(holder).into());
                    }
                    if !told {
                        waiting(&holder);
                        told = true;
                    }
                    tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))).await;
                    delay = (delay * 3 / 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(anyhow::anyhow!(e).context("taking the stack lock")),
            }
        }
    }

    /// Releases a lock we hold (only if it is still ours).
    pub async fn release(&self, lock: &Lock) -> Result<()> {
        match self.read_lock(&lock.bucket).await? {
            Some(h) if h.id == lock.id => {
                self.s3
                    .delete_object()
                    .bucket(&lock.bucket)
                    .key(&lock.key)
                    .send()
                    .await
                    .aws()
                    .context("releasing the stack lock")?;
                Ok(())
            }
            Some(h) => bail!("the stack lock was taken over by {h}; not releasing it"),
            None => Ok(()),
        }
    }

    /// Removes the lock whoever holds it (`infra unlock`).
    pub async fn force_unlock(&self) -> Result<Option<LockInfo>> {
        let bucket = self.lock_bucket().await?;
        let holder = self.read_lock(&bucket).await?;
        if holder.is_some() {
            self.s3
                .delete_object()
                .bucket(&bucket)
                .key(self.lock_key())
                .send()
                .await
                .aws()
                .context("removing the stack lock")?;
        }
        Ok(holder)
    }
}

fn lock_id() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
    h.update(format!("{:?}", std::thread::current().id()).as_bytes());
    hex::encode(&h.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32, process: Option<ProcessId>) -> LockInfo {
        LockInfo {
            id: "x".into(),
            stack: "s".into(),
            user: "u".into(),
            host: "h".into(),
            pid,
            command: "apply".into(),
            since: "now".into(),
            tool_version: "0".into(),
            process,
        }
    }

    #[test]
    fn a_killed_holder_on_this_system_is_gone_a_live_or_foreign_one_is_not() {
        let Some(me) = ProcessId::current() else {
            return; // not Linux: never judged gone
        };
        // This process: alive.
        assert!(!holder(std::process::id(), Some(me.clone())).holder_is_gone());
        // A process that ran and exited: gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let ticks = start_ticks(pid).unwrap_or(1);
        child.wait().unwrap();
        let dead = ProcessId { start_ticks: ticks, ..me.clone() };
        assert!(holder(pid, Some(dead)).holder_is_gone());
        // Our pid reused by another process (another start time): gone.
        let reused = ProcessId { start_ticks: me.start_ticks + 1, ..me.clone() };
        assert!(holder(std::process::id(), Some(reused)).holder_is_gone());
        // Another system (boot id) or a lock without process info: never.
        let elsewhere = ProcessId { boot_id: "another-boot".into(), start_ticks: 1, ..me };
        assert!(!holder(1 << 30, Some(elsewhere)).holder_is_gone());
        assert!(!holder(1 << 30, None).holder_is_gone());
    }
}
