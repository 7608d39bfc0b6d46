//! A deterministic generator of realistic CRM data: the same `n` always gives the same records,
//! so tests and benchmarks can compare runs. One in ten records is an account, four in ten are
//! contacts of an account, half are activities about a contact of an account.

use serde_json::{Value, json};

/// SplitMix64: tiny, fast, and good enough for fake data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Ken",
    "Radia",
    "Tim",
    "Hedy",
    "Niklaus",
    "Sophie",
    "Linus",
    "Katherine",
    "Dennis",
    "Jean",
    "Guido",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Wirth",
    "Wilson",
    "Torvalds",
    "Johnson",
    "Ritchie",
    "Sammet",
    "van Rossum",
];
const COMPANY_A: &[&str] = &[
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Adventure",
    "Tailspin",
    "Litware",
    "Proseware",
    "Wingtip",
    "Coho",
    "Alpine",
    "Blue Yonder",
    "Fourth Coffee",
    "Margie's",
    "Wide World",
];
const COMPANY_B: &[&str] = &[
    "Traders",
    "Works",
    "Systems",
    "Logistics",
    "Foods",
    "Energy",
    "Health",
    "Motors",
    "Labs",
];
const INDUSTRY: &[&str] = &[
    "Manufacturing",
    "Retail",
    "Utilities",
    "Healthcare",
    "Construction",
    "Agriculture",
    "Telecom",
    "Transport",
];
const CITY: &[&str] = &[
    "Seattle", "Prague", "Lisbon", "Oslo", "Austin", "Lyon", "Porto", "Brno", "Denver", "Turin",
];
const TITLE: &[&str] = &[
    "Field Technician",
    "Service Manager",
    "Buyer",
    "Plant Manager",
    "Dispatcher",
    "CFO",
];
const KIND: &[&str] = &["call", "visit", "meeting", "email", "repair", "inspection"];
const TOPIC: &[&str] = &[
    "boiler",
    "pump",
    "invoice",
    "contract renewal",
    "safety check",
    "firmware update",
    "spare parts",
    "warranty claim",
    "quarterly review",
    "installation",
];
const NOTE: &[&str] = &[
    "Customer asked for a callback next week.",
    "Replaced the worn seal; pressure back to normal.",
    "Needs a quote before the end of the month.",
    "Gate code changed, ask reception.",
    "Prefers visits in the morning.",
    "Escalated to the regional manager.",
];

/// How many accounts and contacts `n` records contain (activities are the rest).
pub fn split(n: u64) -> (u64, u64) {
    let accounts = (n / 10).max(1).min(n);
    let contacts = (n * 4 / 10).min(n - accounts);
    (accounts, contacts)
}

/// Stable ids: `a000000001`, `c000000001`, `t000000001`.
pub fn id(prefix: char, i: u64) -> String {
    format!("{prefix}{i:09}")
}

fn timestamp(rng: &mut Rng) -> String {
    let day = rng.below(28) + 1;
    let month = rng.below(12) + 1;
    let hour = rng.below(10) + 8;
    format!("2026-{month:02}-{day:02}T{hour:02}:00:00Z")
}

/// The number of the account a generated record belongs to (an account is its own): whose
/// owner and business unit the record gets.
pub fn account_of(entity: &str, id: &str, fields: &Value) -> u64 {
    let account = if entity == "account" {
        id
    } else {
        fields["account_id"].as_str().unwrap_or_default()
    };
    account.get(1..).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Record number `i` of `n` (0-based), as (entity, id, fields).
pub fn record(n: u64, i: u64) -> (&'static str, String, Value) {
    let mut rng = Rng(i.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x5EED);
    let (accounts, contacts) = split(n);
    if i < accounts {
        let name = format!("{} {}", rng.pick(COMPANY_A), rng.pick(COMPANY_B));
        let fields = json!({
            "name": format!("{name} #{i}"),
            "industry": rng.pick(INDUSTRY),
            "city": rng.pick(CITY),
            "phone": format!("+1 555 {:04}", rng.below(10_000)),
            "annual_revenue": (rng.below(50_000_000) as f64) / 10.0,
            "employees": rng.below(5_000) as i64,
            "active": rng.below(10) != 0,
            "created_at": timestamp(&mut rng),
        });
        return ("account", id('a', i + 1), fields);
    }
    if i < accounts + contacts {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let account = rng.below(accounts) + 1;
        let fields = json!({
            "full_name": format!("{first} {last}"),
            "email": format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase().replace(' ', ""), i),
            "phone": format!("+1 555 {:04}", rng.below(10_000)),
            "job_title": rng.pick(TITLE),
            "account_id": id('a', account),
            "notes": rng.pick(NOTE),
        });
        return ("contact", id('c', i - accounts + 1), fields);
    }
    let contact = if contacts > 0 {
        Some(rng.below(contacts) + 1)
    } else {
        None
    };
    let fields = json!({
        "subject": format!("{} about the {}", capitalize(rng.pick(KIND)), rng.pick(TOPIC)),
        "kind": rng.pick(KIND),
        "due_at": timestamp(&mut rng),
        "done": rng.below(3) == 0,
        "account_id": id('a', rng.below(accounts) + 1),
        "contact_id": contact.map(|c| id('c', c)),
        "notes": rng.pick(NOTE),
    });
    ("activity", id('t', i - accounts - contacts + 1), fields)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_referentially_sound() {
        let n = 1000;
        let (accounts, contacts) = split(n);
        assert_eq!((accounts, contacts), (100, 400));
        for i in 0..n {
            assert_eq!(record(n, i), record(n, i));
            let (entity, _, fields) = record(n, i);
            if entity != "account" {
                let a: u64 = fields["account_id"].as_str().unwrap()[1..].parse().unwrap();
                assert!((1..=accounts).contains(&a));
            }
            if entity == "activity" {
                let c: u64 = fields["contact_id"].as_str().unwrap()[1..].parse().unwrap();
                assert!((1..=contacts).contains(&c));
            }
        }
        assert_eq!(split(1), (1, 0));
    }
}
