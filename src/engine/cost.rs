//! Monthly cost in a plan: what each resource costs before and after the
//! change, and the stack's totals, so that a reviewer sees what a pull
//! request costs next to what it changes.
//!
//! What one resource costs is the provider's knowledge
//! ([`super::provider::Provider::cost`], from its price list); the engine
//! only adds up ([`super::review::price`]). A resource billed only by use
//! (requests, GB) and one whose price is not known are listed apart, never
//! counted as zero in silence. These are the plan's types: they depend on
//! nothing else of the engine.

use serde::{Deserialize, Serialize};

/// What one resource costs per month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "billing", rename_all = "snake_case")]
pub enum Cost {
    /// A fixed monthly amount, between `low` and `high` when it scales
    /// between bounds (a group between its minimum and maximum size).
    /// `basis` says how it is reached and what use adds on top.
    Fixed { low: f64, high: f64, basis: String },
    /// Billed by use only (requests, GB stored or served): nothing at rest.
    Usage { basis: String },
    /// No price is known (the region or the size is not in the price
    /// list): said, never guessed.
    Unknown { reason: String },
}

impl Cost {
    /// The fixed monthly range, if any.
    pub fn fixed(&self) -> Option<Range> {
        match self {
            Cost::Fixed { low, high, .. } => Some(Range { low: *low, high: *high }),
            _ => None,
        }
    }
}

/// A monthly amount that lies between two bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Range {
    pub low: f64,
    pub high: f64,
}

impl std::ops::Add for Range {
    type Output = Range;
    fn add(self, other: Range) -> Range {
        Range { low: self.low + other.low, high: self.high + other.high }
    }
}

impl Range {
    /// `$12.34`, or `$12.34–$56.78` when the bounds differ.
    pub fn dollars(&self) -> String {
        if cents(self.low) == cents(self.high) {
            format!("${:.2}", self.low)
        } else {
            format!("${:.2}–${:.2}", self.low, self.high)
        }
    }
}

fn cents(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// Where the prices come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PriceList {
    pub currency: String,
    /// The day the prices were read.
    pub as_of: String,
    /// Where they were read (the AWS Price List).
    pub source: String,
}

/// One resource's cost on each side of its change (`None`: absent there,
/// or free of charge by itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResourceCost {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Cost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Cost>,
}

impl ResourceCost {
    /// Whether its fixed cost moves with the change.
    pub fn changes(&self) -> bool {
        self.before.as_ref().and_then(Cost::fixed) != self.after.as_ref().and_then(Cost::fixed)
    }
}

/// The plan's monthly cost: totals before and after, each resource's part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanCost {
    pub prices: PriceList,
    /// The fixed monthly cost of the stack as it is.
    pub before: Range,
    /// ... and as the plan leaves it.
    pub after: Range,
    /// Every resource with a cost (fixed, by use or unknown) on either side.
    pub resources: Vec<ResourceCost>,
    /// Addresses billed by use only after the change (not in the totals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage_based: Vec<String>,
    /// Addresses whose price is unknown after the change (not in the totals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

impl PlanCost {
    /// How the monthly total moves, e.g. `$97.06 → $162.76 (+$65.70)`.
    pub fn headline(&self) -> String {
        let delta = Range { low: self.after.low - self.before.low, high: self.after.high - self.before.high };
        let sign = |v: f64| if v < 0.0 { "-" } else { "+" };
        let change = if cents(delta.low) == 0 && cents(delta.high) == 0 {
            "no change".to_string()
        } else if cents(delta.low) == cents(delta.high) {
            format!("{}${:.2}", sign(delta.low), delta.low.abs())
        } else {
            format!("{}${:.2}..{}${:.2}", sign(delta.low), delta.low.abs(), sign(delta.high), delta.high.abs())
        };
        format!("{} → {} ({change})", self.before.dollars(), self.after.dollars())
    }
}

/// Whether the stack's cost after `cost` exceeds `budget` (per month, in the
/// price list's currency): judged on the high bound, what the stack costs
/// when every group runs at its maximum size.
pub fn over_budget(cost: &PlanCost, budget: f64) -> Option<String> {
    (cost.after.high > budget).then(|| {
        let unpriced = if cost.unknown.is_empty() {
            String::new()
        } else {
            format!(", not counting {} resources of unknown price", cost.unknown.len())
        };
        format!(
            "the stack would cost {} a month after this plan (at most {:.2} {}{unpriced}), over the budget of {budget:.2} (--budget); nothing was changed",
            cost.after.dollars(),
            cost.after.high,
            cost.prices.currency
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_reads_as_its_bounds_and_a_budget_judges_the_high_one() {
        assert_eq!(Range { low: 1.0, high: 1.004 }.dollars(), "$1.00");
        assert_eq!(Range { low: 1.0, high: 3.0 }.dollars(), "$1.00–$3.00");
        let cost = PlanCost {
            prices: PriceList { currency: "USD".into(), as_of: "today".into(), source: "memory".into() },
            before: Range { low: 9.0, high: 9.0 },
            after: Range { low: 18.5, high: 20.0 },
            resources: Vec::new(),
            usage_based: Vec::new(),
            unknown: vec!["x".into()],
        };
        assert_eq!(cost.headline(), "$9.00 → $18.50–$20.00 (+$9.50..+$11.00)");
        assert!(over_budget(&cost, 20.0).is_none());
        let refused = over_budget(&cost, 19.0).expect("over");
        assert!(
            refused.contains("at most 20.00")
                && refused.contains("19.00")
                && refused.contains("1 resources of unknown"),
            "{refused}"
        );
    }
}
