//! A DynamoDB table, with its indexes, stream, point-in-time recovery, TTL,
//! encryption key and deletion protection.
//!
//! UpdateTable does one structural thing per call (billing/capacity, one
//! index added or removed, the stream), and the table must be ACTIVE between
//! calls, so an update is a sequence of calls, each waited for.
//!
//! Deleting a table takes an on-demand backup first (unless
//! `--skip-final-backup`) and waits until it is AVAILABLE: AWS refuses to
//! delete a table while its backup is being made.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, DeleteGlobalSecondaryIndexAction,
    GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, SseSpecification, SseType,
    StreamSpecification, StreamViewType, TableDescription, TableStatus, TimeToLiveSpecification,
    UpdateGlobalSecondaryIndexAction,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Tagging, tag_list, tags_of};
use crate::aws::collection::delta;
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{self, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::rds::timestamp;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on, wait_for};
use crate::engine::cost::Cost;
use crate::engine::plan::FieldChange;
use crate::engine::provider::{KindInfo, StepContext, StepReporter};
use crate::engine::resource::Props;
use crate::engine::value::sort_set;

/// Building an index on a big table can take hours.
const INDEX_BUILD: Duration = Duration::from_secs(4 * 3600);
/// Table creation, stream and billing changes: seconds to minutes.
const TABLE_OP: Duration = Duration::from_secs(30 * 60);
/// "The table is being updated": wait and try again.
const BUSY: &[&str] = &["ResourceInUseException", "LimitExceededException"];
/// How long an ACTIVE table may still be reported busy.
const SETTLE: Duration = Duration::from_secs(60);

/// A key attribute: its name and type (`S`, `N`, `B`).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct Key {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Provisioned read and write capacity units.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Capacity {
    pub read: i64,
    pub write: i64,
}

/// A global secondary index (its name is its key in `indexes`).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct IndexProps {
    pub partition_key: Key,
    pub sort_key: Option<Key>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    /// The projected attributes of an `INCLUDE` projection, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Only on a provisioned table.
    pub capacity: Option<Capacity>,
}

impl IndexProps {
    /// Same keys and projection: only the capacity may differ (changeable in place).
    fn same_shape(&self, other: &IndexProps) -> bool {
        self.partition_key == other.partition_key
            && self.sort_key == other.sort_key
            && self.projection == other.projection
            && self.include == other.include
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct TableProps {
    pub table_name: String,
    pub partition_key: Key,
    pub sort_key: Option<Key>,
    /// `PAY_PER_REQUEST` or `PROVISIONED`.
    pub billing_mode: String,
    /// Only on a provisioned table.
    pub capacity: Option<Capacity>,
    pub indexes: BTreeMap<String, IndexProps>,
    /// The stream's view type (`NEW_AND_OLD_IMAGES`...); `None`: no stream.
    pub stream: Option<String>,
    pub point_in_time_recovery: bool,
    pub ttl_attribute: Option<String>,
    pub deletion_protection: bool,
    /// `None`: the AWS owned key.
    pub kms_key: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for TableProps {
    const KIND: &'static str = "dynamodb.table";
}

pub struct Table;

fn key_schema(pk: &Key, sk: Option<&Key>) -> Result<Vec<KeySchemaElement>> {
    let mut v = vec![KeySchemaElement::builder().attribute_name(&pk.name).key_type(KeyType::Hash).build()?];
    if let Some(s) = sk {
        v.push(KeySchemaElement::builder().attribute_name(&s.name).key_type(KeyType::Range).build()?);
    }
    Ok(v)
}

/// Attribute definitions of the table's keys and of `indexes`' keys.
fn attribute_definitions(p: &TableProps, indexes: &BTreeMap<String, IndexProps>) -> Result<Vec<AttributeDefinition>> {
    let mut keys: Vec<&Key> = vec![&p.partition_key];
    keys.extend(p.sort_key.as_ref());
    for ix in indexes.values() {
        keys.push(&ix.partition_key);
        keys.extend(ix.sort_key.as_ref());
    }
    // One definition per attribute (validation made their types agree).
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for k in keys {
        seen.entry(k.name.as_str()).or_insert(k.kind.as_str());
    }
    seen.into_iter()
        .map(|(n, t)| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::from(t))
                .build()
                .map_err(Into::into)
        })
        .collect()
}

fn throughput(c: Capacity) -> Result<ProvisionedThroughput> {
    Ok(ProvisionedThroughput::builder().read_capacity_units(c.read).write_capacity_units(c.write).build()?)
}

fn projection(ix: &IndexProps) -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::from(ix.projection.as_str()))
        .set_non_key_attributes(ix.include.clone())
        .build()
}

fn gsi(name: &str, ix: &IndexProps) -> Result<GlobalSecondaryIndex> {
    Ok(GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(&ix.partition_key, ix.sort_key.as_ref())?))
        .projection(projection(ix))
        .set_provisioned_throughput(ix.capacity.map(throughput).transpose()?)
        .build()?)
}

fn stream_spec(view: Option<&str>) -> Result<StreamSpecification> {
    Ok(StreamSpecification::builder()
        .stream_enabled(view.is_some())
        .set_stream_view_type(view.map(StreamViewType::from))
        .build()?)
}

fn sse_spec(kms_key: Option<&str>) -> SseSpecification {
    match kms_key {
        Some(k) => SseSpecification::builder().enabled(true).sse_type(SseType::Kms).kms_master_key_id(k).build(),
        // Disabled here means "the AWS owned key" (tables are always encrypted).
        None => SseSpecification::builder().enabled(false).build(),
    }
}

/// Name of a final backup: 3 to 255 of `[A-Za-z0-9_.-]`.
pub fn final_backup_name(table: &str, stamp: &str) -> String {
    let suffix = format!("-final-{stamp}");
    let keep = 255usize.saturating_sub(suffix.len());
    let head: String = table.chars().take(keep).collect();
    format!("{head}{suffix}")
}

/// The table as props, from its description and the sub-reads.
fn read(t: &TableDescription, pitr: bool, ttl: Option<String>, tags: Tags) -> TableProps {
    let types: BTreeMap<&str, &str> =
        t.attribute_definitions().iter().map(|a| (a.attribute_name(), a.attribute_type().as_str())).collect();
    let keys = |ks: &[KeySchemaElement]| -> (Key, Option<Key>) {
        let mk = |e: &KeySchemaElement| Key {
            name: e.attribute_name().to_string(),
            kind: types.get(e.attribute_name()).copied().unwrap_or("S").to_string(),
        };
        let pk = ks.iter().find(|e| e.key_type() == &KeyType::Hash).map(mk);
        let sk = ks.iter().find(|e| e.key_type() == &KeyType::Range).map(mk);
        (pk.unwrap_or(Key { name: String::new(), kind: "S".into() }), sk)
    };
    // Tables created as PROVISIONED long ago may have no billing summary.
    let billing_mode = t
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|b| b.as_str().to_string())
        .unwrap_or_else(|| "PROVISIONED".into());
    let provisioned = billing_mode == "PROVISIONED";
    let cap = |read: Option<i64>, write: Option<i64>| -> Option<Capacity> {
        provisioned.then(|| Capacity { read: read.unwrap_or(0), write: write.unwrap_or(0) })
    };
    let (pk, sk) = keys(t.key_schema());
    let mut indexes = BTreeMap::new();
    for ix in t.global_secondary_indexes() {
        let deleting = ix.index_status().is_some_and(|s| s.as_str() == "DELETING");
        let Some(name) = ix.index_name().filter(|_| !deleting) else {
            continue;
        };
        let (ipk, isk) = keys(ix.key_schema());
        let proj = ix.projection();
        let projection =
            proj.and_then(|p| p.projection_type()).map(|p| p.as_str().to_string()).unwrap_or_else(|| "ALL".into());
        let include = (projection == "INCLUDE").then(|| {
            let mut a: Vec<String> = proj.map(|p| p.non_key_attributes().to_vec()).unwrap_or_default();
            a.sort();
            a
        });
        let pt = ix.provisioned_throughput();
        indexes.insert(
            name.to_string(),
            IndexProps {
                partition_key: ipk,
                sort_key: isk,
                projection,
                include,
                capacity: cap(pt.and_then(|p| p.read_capacity_units()), pt.and_then(|p| p.write_capacity_units())),
            },
        );
    }
    let pt = t.provisioned_throughput();
    let stream = t
        .stream_specification()
        .filter(|s| s.stream_enabled())
        .and_then(|s| s.stream_view_type())
        .map(|v| v.as_str().to_string());
    let kms_key = t
        .sse_description()
        .filter(|s| s.status().is_some_and(|st| matches!(st.as_str(), "ENABLED" | "ENABLING" | "UPDATING")))
        .and_then(|s| s.kms_master_key_arn())
        .map(str::to_string);
    TableProps {
        table_name: t.table_name().unwrap_or_default().to_string(),
        partition_key: pk,
        sort_key: sk,
        billing_mode,
        capacity: cap(pt.and_then(|p| p.read_capacity_units()), pt.and_then(|p| p.write_capacity_units())),
        indexes,
        stream,
        point_in_time_recovery: pitr,
        ttl_attribute: ttl,
        deletion_protection: t.deletion_protection_enabled().unwrap_or(false),
        kms_key,
        tags,
    }
}

/// The table at `address` with `props`, and the attributes others read.
fn current(address: String, t: &TableDescription, props: TableProps) -> Current<TableProps> {
    let name = props.table_name.clone();
    let stream_arn = props.stream.as_ref().and(t.latest_stream_arn());
    Current::new(address, &name, props).with("name", &name).with("arn", t.table_arn()).with("stream_arn", stream_arn)
}

async fn describe(aws: &Aws, name: &str) -> Result<Option<TableDescription>> {
    Ok(aws.dynamodb.describe_table().table_name(name).send().await.aws().or_absent()?.and_then(|o| o.table().cloned()))
}

/// The table `name` if it exists and is this stack's (at `address`, when
/// given): describe, tags, then PITR and TTL (DynamoDB has no batch
/// describe; these two run concurrently).
async fn load(aws: &Aws, name: &str, address: Option<&str>) -> Result<Option<Current<TableProps>>> {
    // The table, its tags and its settings are read side by side (a table
    // named with the stack's prefix is the stack's; a plan's round trips
    // are the depth of its longest chain); the tags decide.
    let arn = aws.arn("dynamodb", &format!("table/{name}")).await?;
    let (t, all, pitr, ttl) = tokio::try_join!(
        describe(aws, name),
        async { Ok::<_, anyhow::Error>(tags_of(aws, &arn).await.or_absent()?) },
        async {
            let b = aws.dynamodb.describe_continuous_backups().table_name(name).send().await.aws().or_absent()?;
            Ok::<_, anyhow::Error>(
                b.as_ref()
                    .and_then(|b| b.continuous_backups_description())
                    .and_then(|c| c.point_in_time_recovery_description())
                    .and_then(|p| p.point_in_time_recovery_status())
                    .is_some_and(|s| s.as_str() == "ENABLED"),
            )
        },
        async {
            let t = aws.dynamodb.describe_time_to_live().table_name(name).send().await.aws().or_absent()?;
            Ok::<_, anyhow::Error>(
                t.as_ref()
                    .and_then(|t| t.time_to_live_description())
                    .filter(|d| d.time_to_live_status().is_some_and(|s| matches!(s.as_str(), "ENABLED" | "ENABLING")))
                    .and_then(|d| d.attribute_name())
                    .map(str::to_string),
            )
        },
    )?;
    let (Some(t), Some(all)) = (t, all) else {
        return Ok(None);
    };
    if t.table_status() == Some(&TableStatus::Deleting) {
        return Ok(None);
    }
    let Some(owner) = find::owner(aws, address, all) else {
        return Ok(None);
    };
    Ok(Some(current(owner.address, &t, read(&t, pitr, ttl, owner.tags))))
}

/// Waits until the table and all its indexes are ACTIVE.
async fn wait_active(aws: &Aws, name: &str, timeout: Duration, rep: &dyn StepReporter) -> Result<TableDescription> {
    wait_for(&format!("table {name} to become active"), timeout, rep, || async {
        let Some(t) = describe(aws, name).await? else {
            return Ok(None);
        };
        let busy: Vec<String> = t
            .global_secondary_indexes()
            .iter()
            .filter(|i| i.index_status().is_some_and(|s| s.as_str() != "ACTIVE"))
            .map(|i| {
                format!(
                    "index {} {}",
                    i.index_name().unwrap_or_default(),
                    i.index_status().map(|s| s.as_str()).unwrap_or_default()
                )
            })
            .collect();
        if t.table_status() == Some(&TableStatus::Active) && busy.is_empty() {
            return Ok(Some(t));
        }
        let status = t.table_status().map(|s| s.as_str()).unwrap_or("unknown");
        rep.status(&if busy.is_empty() {
            format!("table {status}")
        } else {
            format!("table {status}, {}", busy.join(", "))
        });
        Ok(None)
    })
    .await
}

/// One UpdateTable call (retried while the table is busy), then waits
/// for the table to be ACTIVE again.
async fn update_table<F>(
    aws: &Aws, name: &str, what: &str, timeout: Duration, rep: &dyn StepReporter, build: F,
) -> Result<()>
where
    F: Fn(
        aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
    ) -> aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
{
    rep.status(what);
    // Busy is a state: wait for it to end, then allow only a short retry
    // for eventual consistency (an ACTIVE table that stays "in use" is a
    // real refusal, e.g. a stream already enabled).
    wait_active(aws, name, timeout, rep).await?;
    retry_on(BUSY, what, SETTLE, rep, || async {
        build(aws.dynamodb.update_table().table_name(name)).send().await.aws()
    })
    .await?;
    wait_active(aws, name, timeout, rep).await?;
    Ok(())
}

async fn set_pitr(aws: &Aws, name: &str, on: bool, rep: &dyn StepReporter) -> Result<()> {
    let spec = PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(on).build()?;
    // Right after a table is created, continuous backups take a moment to be ready.
    retry_on(
        &["ContinuousBackupsUnavailableException", "ResourceInUseException"],
        "setting point-in-time recovery",
        TABLE_OP,
        rep,
        || async {
            aws.dynamodb
                .update_continuous_backups()
                .table_name(name)
                .point_in_time_recovery_specification(spec.clone())
                .send()
                .await
                .aws()
        },
    )
    .await?;
    Ok(())
}

async fn set_ttl(aws: &Aws, name: &str, old: Option<&str>, new: Option<&str>, rep: &dyn StepReporter) -> Result<()> {
    let call = |attr: &str, on: bool| {
        let attr = attr.to_string();
        async move {
            let spec = TimeToLiveSpecification::builder().enabled(on).attribute_name(attr).build()?;
            retry_on(&["ResourceInUseException"], "setting TTL", TABLE_OP, rep, || async {
                aws.dynamodb
                    .update_time_to_live()
                    .table_name(name)
                    .time_to_live_specification(spec.clone())
                    .send()
                    .await
                    .aws()
            })
            .await?;
            Ok::<_, anyhow::Error>(())
        }
    };
    if let Some(o) = old
        && new != Some(o)
    {
        call(o, false).await?;
    }
    if let Some(n) = new {
        call(n, true).await.with_context(|| {
            if old.is_some_and(|o| o != n) {
                format!("TTL on `{}` was disabled, but AWS allows one TTL change per hour: run `infra apply` again in an hour to enable it on `{n}`", old.unwrap_or_default())
            } else {
                format!("enabling TTL on `{n}`")
            }
        })?;
    }
    Ok(())
}

/// The indexes to remove and to add (in name order; a reshaped index is
/// both: its keys or projection cannot change in place), and the kept ones
/// whose capacity alone changes.
struct IndexPlan<'a> {
    remove: Vec<&'a str>,
    add: Vec<(&'a str, &'a IndexProps)>,
    resize: Vec<(&'a str, Capacity)>,
}

fn index_plan<'a>(want: &'a BTreeMap<String, IndexProps>, have: &'a BTreeMap<String, IndexProps>) -> IndexPlan<'a> {
    let pairs = |m: &'a BTreeMap<String, IndexProps>| -> Vec<(&'a str, &'a IndexProps)> {
        m.iter().map(|(n, ix)| (n.as_str(), ix)).collect()
    };
    let (want, have) = (pairs(want), pairs(have));
    let d = delta(&want, &have, |(n, _)| *n);
    let (reshaped, resized): (Vec<_>, Vec<_>) = d.changed.into_iter().partition(|(h, w)| !h.1.same_shape(w.1));
    let mut remove: Vec<&str> = d.removed.iter().map(|(n, _)| *n).chain(reshaped.iter().map(|(h, _)| h.0)).collect();
    remove.sort();
    let mut add: Vec<(&str, &IndexProps)> =
        d.added.into_iter().copied().chain(reshaped.iter().map(|(_, w)| **w)).collect();
    add.sort_by_key(|(n, _)| *n);
    let resize = resized.into_iter().filter_map(|(_, (n, w))| Some((*n, w.capacity?))).collect();
    IndexPlan { remove, add, resize }
}

#[async_trait]
impl Kind for Table {
    type Props = TableProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["table_name", "partition_key", "sort_key"],
            holds_data: true,
            weight: 3,
            ..KindInfo::default()
        }
    }

    fn normalize(&self, props: &mut Value) {
        if let Some(Value::Object(ixs)) = props.get_mut("indexes") {
            for ix in ixs.values_mut() {
                sort_set(ix, "include");
            }
        }
    }

    fn protected(&self, p: &TableProps) -> bool {
        p.deletion_protection
    }

    fn annotate(&self, _desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        table_notes(fields)
    }

    /// ListTables (paginated), then only the tables named like the stack's
    /// are loaded and their tags checked.
    /// On demand: by requests and storage only. Provisioned: the table's
    /// and its indexes' capacity units by the hour, storage on top.
    fn cost(&self, p: &TableProps, prices: &Prices) -> Option<Cost> {
        if p.billing_mode != "PROVISIONED" {
            return Some(prices.usage(&[
                (&["dynamodb", "on_demand", "read_per_million"], "per 1M reads"),
                (&["dynamodb", "on_demand", "write_per_million"], "per 1M writes"),
                (&["dynamodb", "storage_gb_month"], "per GB-month stored"),
            ]));
        }
        let units = |f: fn(&Capacity) -> i64| {
            let all = p.capacity.iter().chain(p.indexes.values().filter_map(|i| i.capacity.as_ref()));
            all.map(f).sum::<i64>() as f64
        };
        let (r, w) = (units(|c| c.read), units(|c| c.write));
        let bill = prices
            .bill()
            .hourly("read capacity units", (r, r), &["dynamodb", "provisioned", "rcu_hour"])
            .hourly("write capacity units", (w, w), &["dynamodb", "provisioned", "wcu_hour"]);
        Some(bill.plus(&["dynamodb", "storage_gb_month"], "per GB-month stored").done())
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<TableProps>>> {
        let prefix = format!("{}-", aws.stack);
        let names: Vec<String> = paginated!(aws.dynamodb.list_tables())?;
        let loads = names.iter().filter(|n| n.starts_with(&prefix)).map(|n| load(aws, n, address));
        Ok(futures::future::try_join_all(loads).await?.into_iter().flatten().collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired<TableProps>, ctx: &StepContext<'_>) -> Result<Current<TableProps>> {
        let p = &d.props;
        let name = p.table_name.as_str();
        let tags = tag_list(&aws.tags_for(&d.address, &p.tags))?;
        let gsis = p.indexes.iter().map(|(n, ix)| gsi(n, ix)).collect::<Result<Vec<_>>>()?;
        let sent = aws
            .dynamodb
            .create_table()
            .table_name(name)
            .set_key_schema(Some(key_schema(&p.partition_key, p.sort_key.as_ref())?))
            .set_attribute_definitions(Some(attribute_definitions(p, &p.indexes)?))
            .billing_mode(BillingMode::from(p.billing_mode.as_str()))
            .set_provisioned_throughput(p.capacity.map(throughput).transpose()?)
            .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
            .set_stream_specification(p.stream.is_some().then(|| stream_spec(p.stream.as_deref())).transpose()?)
            .set_sse_specification(p.kms_key.as_deref().map(|k| sse_spec(Some(k))))
            .deletion_protection_enabled(p.deletion_protection)
            .set_tags(Some(tags))
            .send()
            .await
            .aws();
        if let Err(e) = sent {
            if !e.is("ResourceInUseException") {
                return Err(anyhow::Error::from(e).context(format!("creating table {name}")));
            }
            // It exists: ours from a retried call, or someone else's.
            if load(aws, name, Some(&d.address)).await?.is_none() {
                bail!(
                    "a DynamoDB table named {name} already exists and is not part of stack {}; delete or rename it",
                    aws.stack
                );
            }
        }
        wait_active(aws, name, INDEX_BUILD, ctx).await?;
        if p.point_in_time_recovery {
            set_pitr(aws, name, true, ctx).await?;
        }
        if p.ttl_attribute.is_some() {
            set_ttl(aws, name, None, p.ttl_attribute.as_deref(), ctx).await?;
        }
        load(aws, name, None).await?.context("the table vanished right after its creation")
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<TableProps>, l: &Current<TableProps>, changed: &[String], ctx: &StepContext<'_>,
    ) -> Result<Current<TableProps>> {
        let (p, old) = (&d.props, &l.props);
        let name = p.table_name.as_str();
        let has = |f: &str| changed.iter().any(|c| c == f);

        // Protection off first, so the rest cannot be blocked by it; on last.
        if has("deletion_protection") && !p.deletion_protection {
            update_table(aws, name, "lifting deletion protection", TABLE_OP, ctx, |b| {
                b.deletion_protection_enabled(false)
            })
            .await?;
        }

        // Billing mode and capacity (the indexes' capacity travels with a switch to provisioned).
        let mode_switch = p.billing_mode != old.billing_mode;
        if has("billing_mode") || has("capacity") {
            let mut kept_updates = Vec::new();
            if mode_switch && let Some(cap) = p.capacity {
                for n in old.indexes.keys() {
                    let c = p.indexes.get(n).and_then(|i| i.capacity).unwrap_or(cap);
                    kept_updates.push(capacity_update(n, c)?);
                }
            }
            let tp = p.capacity.map(throughput).transpose()?;
            update_table(aws, name, "changing billing and capacity", TABLE_OP, ctx, |b| {
                b.billing_mode(BillingMode::from(p.billing_mode.as_str()))
                    .set_provisioned_throughput(tp.clone())
                    .set_global_secondary_index_updates((!kept_updates.is_empty()).then(|| kept_updates.clone()))
            })
            .await?;
        }

        // Indexes: remove (and the reshaped ones), then add, one per call.
        if has("indexes") {
            let plan = index_plan(&p.indexes, &old.indexes);
            let mut current = old.indexes.clone();
            for n in plan.remove {
                let action = DeleteGlobalSecondaryIndexAction::builder().index_name(n).build()?;
                update_table(aws, name, &format!("removing index {n}"), INDEX_BUILD, ctx, |b| {
                    b.global_secondary_index_updates(
                        GlobalSecondaryIndexUpdate::builder().delete(action.clone()).build(),
                    )
                })
                .await?;
                current.remove(n);
            }
            for (n, ix) in plan.add {
                current.insert(n.to_string(), ix.clone());
                let defs = attribute_definitions(p, &current)?;
                let action = CreateGlobalSecondaryIndexAction::builder()
                    .index_name(n)
                    .set_key_schema(Some(key_schema(&ix.partition_key, ix.sort_key.as_ref())?))
                    .projection(projection(ix))
                    .set_provisioned_throughput(ix.capacity.map(throughput).transpose()?)
                    .build()?;
                update_table(
                    aws,
                    name,
                    &format!("adding index {n} (AWS builds it in the background)"),
                    INDEX_BUILD,
                    ctx,
                    |b| {
                        b.set_attribute_definitions(Some(defs.clone())).global_secondary_index_updates(
                            GlobalSecondaryIndexUpdate::builder().create(action.clone()).build(),
                        )
                    },
                )
                .await?;
            }
            // Capacity-only changes of kept indexes (a mode switch already set them).
            if !mode_switch && !plan.resize.is_empty() {
                let updates = plan.resize.iter().map(|(n, c)| capacity_update(n, *c)).collect::<Result<Vec<_>>>()?;
                update_table(aws, name, "changing index capacity", TABLE_OP, ctx, |b| {
                    b.set_global_secondary_index_updates(Some(updates.clone()))
                })
                .await?;
            }
        }

        // Stream: a view type cannot change in place: disable, wait, enable.
        if has("stream") {
            if old.stream.is_some() {
                let off = stream_spec(None)?;
                update_table(aws, name, "disabling the stream", TABLE_OP, ctx, |b| b.stream_specification(off.clone()))
                    .await?;
            }
            if p.stream.is_some() {
                let on = stream_spec(p.stream.as_deref())?;
                update_table(aws, name, "enabling the stream", TABLE_OP, ctx, |b| b.stream_specification(on.clone()))
                    .await?;
            }
        }

        if has("kms_key") {
            let sse = sse_spec(p.kms_key.as_deref());
            update_table(aws, name, "changing the encryption key", TABLE_OP, ctx, |b| b.sse_specification(sse.clone()))
                .await?;
        }
        if has("point_in_time_recovery") {
            set_pitr(aws, name, p.point_in_time_recovery, ctx).await?;
        }
        if has("ttl_attribute") {
            set_ttl(aws, name, old.ttl_attribute.as_deref(), p.ttl_attribute.as_deref(), ctx).await?;
        }
        if has("deletion_protection") && p.deletion_protection {
            update_table(aws, name, "enabling deletion protection", TABLE_OP, ctx, |b| {
                b.deletion_protection_enabled(true)
            })
            .await?;
        }
        let arn = l.attr("arn").unwrap_or_default();
        tags::sync(&Tagging, aws, arn, &old.tags, &p.tags).await?;
        load(aws, name, None).await?.context("the table vanished during its update")
    }

    async fn delete(&self, aws: &Aws, l: &Current<TableProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let Some(t) = describe(aws, &l.id).await? else {
            return Ok(None);
        };
        let gone = || async {
            wait_for("the table to be deleted", TABLE_OP, ctx, || async {
                Ok(describe(aws, &l.id).await?.is_none().then_some(()))
            })
            .await
        };
        if t.table_status() == Some(&TableStatus::Deleting) {
            // An earlier run asked already (and took its backup then).
            gone().await?;
            return Ok(None);
        }
        if t.deletion_protection_enabled() == Some(true) {
            bail!(
                "{} ({}) has deletion protection on in AWS. To delete it, set `deletion_protection: false` for it in the stack file and run `infra apply` first",
                l.address,
                l.id
            );
        }
        let backup = if ctx.options.skip_final_backup { None } else { Some(backup(aws, &l.id, ctx).await?) };
        // Refused while the table is being created or updated (an index
        // build can take hours): that ends by itself.
        retry_on(BUSY, "deleting the table", INDEX_BUILD, ctx, || async {
            aws.dynamodb.delete_table().table_name(&l.id).send().await.aws().or_absent()
        })
        .await?;
        gone().await?;
        Ok(Some(match backup {
            Some((name, arn)) => {
                format!("backup {name} kept: {arn} (restore with `aws dynamodb restore-table-from-backup`)")
            }
            None => "no backup (--skip-final-backup)".into(),
        }))
    }
}

/// An index's new provisioned capacity.
fn capacity_update(index: &str, c: Capacity) -> Result<GlobalSecondaryIndexUpdate> {
    Ok(GlobalSecondaryIndexUpdate::builder()
        .update(
            UpdateGlobalSecondaryIndexAction::builder()
                .index_name(index)
                .provisioned_throughput(throughput(c)?)
                .build()?,
        )
        .build())
}

/// An on-demand backup of the table, waited for until AVAILABLE (the table
/// cannot be deleted while its backup is being made): (name, ARN).
async fn backup(aws: &Aws, table: &str, ctx: &StepContext<'_>) -> Result<(String, String)> {
    let name = final_backup_name(table, &timestamp());
    ctx.status(&format!("taking backup {name}"));
    let out = retry_on(
        &["TableInUseException", "ContinuousBackupsUnavailableException", "LimitExceededException"],
        "backing up the table",
        TABLE_OP,
        ctx,
        || async { aws.dynamodb.create_backup().table_name(table).backup_name(&name).send().await.aws() },
    )
    .await?;
    let arn = out.backup_details().map(|b| b.backup_arn().to_string()).context("DynamoDB returned no backup ARN")?;
    wait_for("the backup to be available", TABLE_OP, ctx, || async {
        let b = aws.dynamodb.describe_backup().backup_arn(&arn).send().await.aws()?;
        let status = b
            .backup_description()
            .and_then(|d| d.backup_details())
            .map(|d| d.backup_status().as_str().to_string())
            .unwrap_or_default();
        match status.as_str() {
            "AVAILABLE" => Ok(Some(())),
            "DELETED" => {
                bail!("backup {arn} was deleted before the table; not deleting the table")
            }
            _ => Ok(None),
        }
    })
    .await?;
    Ok((name, arn))
}

/// What an in-place change of a table does beyond the diff.
fn table_notes(fields: &[FieldChange]) -> Vec<String> {
    let mut notes = Vec::new();
    if fields.iter().any(|f| f.forces_replacement) {
        return notes;
    }
    let seg = |f: &FieldChange, i: usize| f.path.split('.').nth(i).map(str::to_string);
    let top = |name: &str| fields.iter().find(|f| seg(f, 0).as_deref() == Some(name));
    if let Some(f) = top("stream") {
        let (a, b) = (f.old.as_ref().and_then(Value::as_str), f.new.as_ref().and_then(Value::as_str));
        notes.push(match (a, b) {
            (Some(_), Some(_)) => "stream view type change: the stream is disabled, then a new one enabled (new stream ARN); consumers of the old stream stop receiving records".into(),
            (Some(_), None) => "disabling the stream: consumers stop receiving records (the last 24 hours stay readable)".into(),
            _ => "enabling the stream: a new stream ARN".into(),
        });
    }
    // Index changes, per index name.
    let mut by_index: BTreeMap<String, Vec<&FieldChange>> = BTreeMap::new();
    for f in fields.iter().filter(|f| seg(f, 0).as_deref() == Some("indexes")) {
        if let Some(n) = seg(f, 1) {
            by_index.entry(n).or_default().push(f);
        }
    }
    for (n, fs) in by_index {
        let added = fs.iter().all(|f| f.old.is_none());
        let removed = fs.iter().all(|f| f.new.is_none());
        let capacity_only = fs.iter().all(|f| seg(f, 2).as_deref() == Some("capacity"));
        notes.push(if added {
            format!("index {n} is built in the background (long on a big table); the apply waits until it is ACTIVE")
        } else if removed {
            format!("index {n} is removed: queries on it will fail")
        } else if capacity_only {
            format!("index {n}: capacity change in place")
        } else {
            format!("index {n} is rebuilt (removed, then added): queries on it fail until it is ACTIVE again")
        });
    }
    if top("billing_mode").is_some() {
        notes.push("billing mode switch: AWS limits how often a table may switch modes in 24 hours".into());
    }
    if let Some(f) = top("ttl_attribute")
        && f.old.as_ref().is_some_and(|v| !v.is_null())
        && f.new.as_ref().is_some_and(|v| !v.is_null())
    {
        notes.push("TTL attribute change: AWS allows one TTL change per hour; if the enable is refused, apply again an hour later".into());
    }
    if top("kms_key").is_some() {
        notes.push("encryption key change: no downtime, the table is re-encrypted in the background".into());
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fc(path: &str, old: Option<Value>, new: Option<Value>) -> FieldChange {
        FieldChange { path: path.into(), old, new, forces_replacement: false }
    }

    #[test]
    fn notes_for_indexes_streams_and_ttl() {
        let n = table_notes(&[
            fc("indexes.by_status.partition_key.name", None, Some(json!("status"))),
            fc("indexes.by_status.projection", None, Some(json!("ALL"))),
            fc("indexes.old_ix.projection", Some(json!("ALL")), None),
            fc("indexes.by_day.capacity.read", Some(json!(1)), Some(json!(2))),
            fc("indexes.by_x.projection", Some(json!("ALL")), Some(json!("KEYS_ONLY"))),
        ]);
        assert!(n.iter().any(|s| s.starts_with("index by_status is built")), "{n:?}");
        assert!(n.iter().any(|s| s.starts_with("index old_ix is removed")), "{n:?}");
        assert!(n.iter().any(|s| s == "index by_day: capacity change in place"), "{n:?}");
        assert!(n.iter().any(|s| s.starts_with("index by_x is rebuilt")), "{n:?}");

        let n = table_notes(&[fc("stream", Some(json!("KEYS_ONLY")), Some(json!("NEW_IMAGE")))]);
        assert!(n[0].contains("new stream ARN"), "{n:?}");
        let n = table_notes(&[fc("ttl_attribute", Some(json!("a")), Some(json!("b")))]);
        assert!(n[0].contains("one TTL change per hour"), "{n:?}");
        let n = table_notes(&[fc("ttl_attribute", Some(Value::Null), Some(json!("b")))]);
        assert!(n.is_empty(), "{n:?}");
    }

    #[test]
    fn backup_names_fit() {
        let n = final_backup_name("shop-orders", "20240131-235959");
        assert_eq!(n, "shop-orders-final-20240131-235959");
        let long = final_backup_name(&"t".repeat(255), "20240131-235959");
        assert_eq!(long.len(), 255);
        assert!(long.ends_with("-final-20240131-235959"));
    }

    #[test]
    fn attribute_definitions_cover_table_and_index_keys_once() {
        let k = |n: &str, t: &str| Key { name: n.into(), kind: t.into() };
        let ix = IndexProps {
            partition_key: k("status", "S"),
            sort_key: Some(k("pk", "S")),
            projection: "ALL".into(),
            include: None,
            capacity: None,
        };
        let p = TableProps {
            table_name: "s-t".into(),
            partition_key: k("pk", "S"),
            sort_key: Some(k("sk", "N")),
            billing_mode: "PAY_PER_REQUEST".into(),
            capacity: None,
            indexes: BTreeMap::from([("by_status".to_string(), ix.clone())]),
            stream: None,
            point_in_time_recovery: true,
            ttl_attribute: None,
            deletion_protection: false,
            kms_key: None,
            tags: Tags::new(),
        };
        let defs = attribute_definitions(&p, &p.indexes).unwrap();
        let names: Vec<(&str, &str)> = defs.iter().map(|d| (d.attribute_name(), d.attribute_type().as_str())).collect();
        assert_eq!(names, vec![("pk", "S"), ("sk", "N"), ("status", "S")]);
        let mut other = ix.clone();
        other.capacity = Some(Capacity { read: 1, write: 1 });
        assert!(ix.same_shape(&other));
        other.projection = "KEYS_ONLY".into();
        assert!(!ix.same_shape(&other));
    }

    #[test]
    fn index_changes_are_removals_additions_and_resizes() {
        let ix = |pk: &str, projection: &str, read: i64| IndexProps {
            partition_key: Key { name: pk.into(), kind: "S".into() },
            sort_key: None,
            projection: projection.into(),
            include: None,
            capacity: Some(Capacity { read, write: 1 }),
        };
        let have = BTreeMap::from([
            ("gone".to_string(), ix("a", "ALL", 1)),
            ("kept".to_string(), ix("b", "ALL", 1)),
            ("reshaped".to_string(), ix("c", "ALL", 1)),
            ("resized".to_string(), ix("d", "ALL", 1)),
        ]);
        let want = BTreeMap::from([
            ("kept".to_string(), ix("b", "ALL", 1)),
            ("new".to_string(), ix("e", "ALL", 1)),
            ("reshaped".to_string(), ix("c", "KEYS_ONLY", 1)),
            ("resized".to_string(), ix("d", "ALL", 5)),
        ]);
        let plan = index_plan(&want, &have);
        assert_eq!(plan.remove, vec!["gone", "reshaped"]);
        let added: Vec<&str> = plan.add.iter().map(|(n, _)| *n).collect();
        assert_eq!(added, vec!["new", "reshaped"]);
        assert_eq!(plan.add[1].1.projection, "KEYS_ONLY");
        assert_eq!(plan.resize, vec![("resized", Capacity { read: 5, write: 1 })]);
    }
}
