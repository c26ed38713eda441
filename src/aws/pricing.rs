//! AWS prices for plans: the table bundled from the AWS Price List
//! (`pricing/prices.json`, refreshed by `scripts/refresh-prices.py` from
//! the Price List Query API) and a small bill builder the kinds price
//! themselves with ([`super::kind::Kind::cost`]).
//!
//! A price missing from the table (a region or size it does not hold) makes
//! the resource's cost unknown, with the reason: never a guess. Monthly
//! means the table's `hours_per_month` (730, as AWS's own calculator).

use std::sync::LazyLock;

use serde_json::Value;

use crate::engine::cost::{Cost, PriceList};

/// The bundled table, parsed once (`None` if it were unreadable: plans then
/// have no cost rather than a wrong one; a unit test keeps it readable).
static TABLE: LazyLock<Option<Value>> =
    LazyLock::new(|| serde_json::from_str(include_str!("../../pricing/prices.json")).ok());

/// The prices of one region.
#[derive(Clone, Debug)]
pub struct Prices {
    pub region: String,
    table: &'static Value,
}

impl Prices {
    /// The bundled prices for `region` (a region the table lacks still has
    /// `Prices`: each price it lacks reads as unknown).
    pub fn bundled(region: &str) -> Option<Prices> {
        Some(Prices { region: region.to_string(), table: TABLE.as_ref()? })
    }

    /// Where the prices come from, for the plan.
    pub fn list(&self) -> PriceList {
        let s = |k: &str| self.table[k].as_str().unwrap_or_default().to_string();
        PriceList {
            currency: s("currency"),
            as_of: s("as_of"),
            source: format!("AWS Price List prices for {} bundled in pricing/prices.json", self.region),
        }
    }

    pub fn hours_per_month(&self) -> f64 {
        self.table["hours_per_month"].as_f64().unwrap_or(730.0)
    }

    /// The price at `path` in the region's entry (`["vpc", "nat_gateway",
    /// "hour"]`), or why there is none.
    pub fn usd(&self, path: &[&str]) -> Result<f64, String> {
        let region = &self.table["regions"][&self.region];
        if region.is_null() {
            return Err(format!("the bundled price list has no prices for {}", self.region));
        }
        price_at(region, path).ok_or_else(|| {
            format!(
                "the bundled price list has no price for {} in {} (see pricing/prices.json)",
                path.join("."),
                self.region
            )
        })
    }

    /// A price that is the same in every region (CloudFront's edges).
    pub fn global_usd(&self, path: &[&str]) -> Result<f64, String> {
        price_at(&self.table["global"], path)
            .ok_or_else(|| format!("the bundled price list has no price for {}", path.join(".")))
    }

    /// A bill: fixed monthly parts added one by one.
    pub fn bill(&self) -> Bill<'_> {
        Bill { prices: self, low: 0.0, high: 0.0, parts: Vec::new(), usage: Vec::new(), missing: None }
    }

    /// A use-only cost, its basis built from prices (`$0.20 per 1M requests`);
    /// unknown when a price is missing.
    pub fn usage(&self, parts: &[(&[&str], &str)]) -> Cost {
        let mut said = Vec::new();
        for (path, unit) in parts {
            match self.usd(path) {
                Ok(p) => said.push(format!("{} {unit}", money(p))),
                Err(reason) => return Cost::Unknown { reason },
            }
        }
        Cost::Usage { basis: said.join(" + ") }
    }
}

/// The price at `path` under `root`: an entry's `usd`, or a bare number.
fn price_at(root: &Value, path: &[&str]) -> Option<f64> {
    let v = path.iter().fold(root, |v, p| &v[*p]);
    v.get("usd").unwrap_or(v).as_f64()
}

/// `$0.045`, `$32.85`, `$0.40`, `$0.0000166667`: cents at least, and as
/// many more decimals as the price needs.
pub fn money(v: f64) -> String {
    let s = format!("{v:.10}");
    let s = s.trim_end_matches('0');
    let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals <= 2 { format!("${v:.2}") } else { format!("${s}") }
}

/// A fixed monthly cost being added up, with how it is reached.
pub struct Bill<'a> {
    prices: &'a Prices,
    low: f64,
    high: f64,
    parts: Vec<String>,
    usage: Vec<String>,
    missing: Option<String>,
}

impl Bill<'_> {
    /// `count` (low..high) of something billed per hour, all month:
    /// `NAT gateway: 2 × 730 h × $0.045`.
    pub fn hourly(self, what: &str, count: (f64, f64), path: &[&str]) -> Self {
        let hours = self.prices.hours_per_month();
        self.add(what, count, path, hours, |n| if n == "1" { format!("{hours} h") } else { format!("{n} × {hours} h") })
    }

    /// `quantity` (low..high) of something billed per unit-month:
    /// `storage: 20 GB-month × $0.23`.
    pub fn monthly(self, what: &str, quantity: (f64, f64), unit: &str, path: &[&str]) -> Self {
        self.add(what, quantity, path, 1.0, |n| format!("{n} {unit}"))
    }

    fn add(
        mut self, what: &str, (low, high): (f64, f64), path: &[&str], per: f64, said: impl Fn(&str) -> String,
    ) -> Self {
        if high <= 0.0 || self.missing.is_some() {
            return self;
        }
        match self.prices.usd(path) {
            Ok(price) => {
                self.low += low * per * price;
                self.high += high * per * price;
                let n = if low == high { format!("{low}") } else { format!("{low}..{high}") };
                self.parts.push(format!("{what}: {} × {}", said(&n), money(price)));
            }
            Err(reason) => self.missing = Some(reason),
        }
        self
    }

    /// What use adds on top, priced (`$0.045 per GB processed`).
    pub fn plus(mut self, path: &[&str], unit: &str) -> Self {
        if let Ok(p) = self.prices.usd(path) {
            self.usage.push(format!("{} {unit}", money(p)));
        }
        self
    }

    pub fn done(self) -> Cost {
        if let Some(reason) = self.missing {
            return Cost::Unknown { reason };
        }
        let mut basis = self.parts.join("; ");
        if !self.usage.is_empty() {
            basis.push_str(&format!("; plus {}", self.usage.join(", ")));
        }
        Cost::Fixed { low: self.low, high: self.high, basis }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_reads_and_a_missing_price_is_unknown() {
        let p = Prices::bundled("us-east-1").expect("the bundled table parses");
        assert_eq!(p.list().currency, "USD");
        assert_eq!(p.hours_per_month(), 730.0);
        let nat = p.bill().hourly("NAT gateway", (2.0, 2.0), &["vpc", "nat_gateway", "hour"]).done();
        let Cost::Fixed { low, high, basis } = nat else { panic!("{nat:?}") };
        assert!((low - 2.0 * 730.0 * 0.045).abs() < 1e-9 && low == high, "{low}");
        assert_eq!(basis, "NAT gateway: 2 × 730 h × $0.045");
        let far = Prices::bundled("mars-north-1").unwrap();
        assert!(matches!(
            far.bill().hourly("x", (1.0, 1.0), &["vpc", "nat_gateway", "hour"]).done(),
            Cost::Unknown { .. }
        ));
        assert_eq!(money(0.0000166667), "$0.0000166667");
        assert_eq!(money(32.85), "$32.85");
        assert_eq!(money(0.4), "$0.40");
        assert_eq!(money(0.045), "$0.045");
    }
}
