//! The people and things a KooGallery workload talks about: accounts (domains)
//! with their users, access keys and source IPs, the products on sale, and the
//! orders and instances each account owns. Built once from the seed.

use rand::distributions::WeightedIndex;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// How many accounts (domains) buy on the marketplace.
pub const ACCOUNTS: usize = 300;
/// How many IAM users those accounts have between them.
pub const USERS: usize = 2_000;
/// How many products are on sale.
pub const PRODUCTS: usize = 400;

const GIVEN_NAMES: &[&str] = &[
    "wei", "fang", "na", "min", "jing", "lei", "yang", "jun", "tao", "hui", "ming", "xin", "ying", "hao", "chen",
    "ana", "john", "maria", "david", "sara", "ahmad", "siti", "nguyen", "budi", "ravi", "priya", "kenji", "yuki",
    "omar", "lina", "peter", "emma",
];
const FAMILY_NAMES: &[&str] = &[
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "tan", "lim", "ng", "lee", "santos",
    "garcia", "smith", "tanaka", "kumar", "rahman", "wijaya", "pham", "silva", "khan",
];
const COMPANY_WORDS: &[&str] = &[
    "nova", "blue", "peak", "lotus", "harbor", "sun", "jade", "orbit", "pixel", "summit", "delta", "coral", "maple",
    "falcon", "vertex", "zen",
];
const COMPANY_KINDS: &[&str] =
    &["tech", "retail", "logistics", "health", "edu", "finance", "games", "media", "foods", "labs", "travel", "energy"];
const PRODUCT_WORDS: &[&str] = &[
    "CRM",
    "ERP",
    "HR",
    "Invoice",
    "Helpdesk",
    "Analytics",
    "Backup",
    "WAF",
    "Mail",
    "Chatbot",
    "OCR",
    "Video",
    "Survey",
    "POS",
    "Inventory",
    "Payroll",
    "Signature",
    "Monitoring",
    "SIEM",
    "Booking",
];
const PRODUCT_EDITIONS: &[&str] = &["Cloud", "Pro", "Suite", "Express", "Enterprise", "Lite", "Plus", "One"];
/// Delivery kinds of KooGallery products.
pub const DELIVERY_KINDS: &[&str] = &["SaaS", "image", "license", "professional_service"];
/// Billing plans of a product.
pub const PLANS: &[&str] = &["basic", "standard", "professional", "enterprise"];

/// A product on sale.
pub struct Product {
    pub id: String,
    pub name: String,
    pub sku: String,
    pub delivery: &'static str,
    /// Monthly list price in cents (USD).
    pub monthly_price_cents: u64,
}

/// A purchased resource (an instance of a product).
pub struct Instance {
    pub id: String,
    pub name: String,
    pub product: usize,
    pub order_id: String,
}

/// An account (domain) that buys on the marketplace.
pub struct Account {
    pub id: String,
    pub name: String,
    /// Enterprise projects the account files its resources under; `"0"` is the default project.
    pub enterprise_projects: Vec<String>,
    pub orders: Vec<String>,
    pub instances: Vec<Instance>,
    pub requirements: Vec<String>,
    pub private_offers: Vec<String>,
    pub agreements: Vec<String>,
}

/// An IAM user (or an agency session) of an account.
pub struct User {
    pub account: usize,
    pub id: String,
    pub name: String,
    pub access_keys: Vec<String>,
    pub source_ips: Vec<String>,
    pub is_root: bool,
    /// Set for principals that act through an agency (user type `AssumedAgency`).
    pub agency: Option<String>,
}

/// Everything a workload refers to, with the activity skew of the users.
pub struct Population {
    pub accounts: Vec<Account>,
    pub users: Vec<User>,
    pub products: Vec<Product>,
    /// Picks a user; a few users are much busier than most.
    pub user_activity: WeightedIndex<f64>,
}

impl Population {
    pub fn new(rng: &mut StdRng) -> Population {
        let products: Vec<Product> = (0..PRODUCTS).map(|_| product(rng)).collect();
        let accounts: Vec<Account> = (0..ACCOUNTS).map(|_| account(rng, products.len())).collect();
        // Account sizes are skewed: a few enterprises with many users, many accounts with one or two.
        let size_weights = WeightedIndex::new((0..ACCOUNTS).map(|rank| 1.0 / (rank as f64 + 1.0).powf(0.9)))
            .expect("positive weights");
        let mut users = Vec::with_capacity(USERS);
        for account_index in 0..ACCOUNTS {
            users.push(user(rng, account_index, true));
        }
        while users.len() < USERS {
            let account_index = rng.sample(&size_weights);
            users.push(user(rng, account_index, false));
        }
        let mut activity: Vec<f64> = (0..USERS).map(|rank| 1.0 / (rank as f64 + 1.0).powf(0.7)).collect();
        activity.shuffle(rng);
        let user_activity = WeightedIndex::new(activity).expect("positive weights");
        Population { accounts, users, products, user_activity }
    }
}

fn product(rng: &mut StdRng) -> Product {
    let name = format!("{} {}", PRODUCT_WORDS.choose(rng).unwrap(), PRODUCT_EDITIONS.choose(rng).unwrap());
    Product {
        id: format!("OFFI{:018}", rng.gen_range(100_000_000_000_000_000u64..1_000_000_000_000_000_000)),
        name,
        sku: format!("{:032x}", rng.gen::<u128>()),
        delivery: DELIVERY_KINDS.choose(rng).unwrap(),
        monthly_price_cents: rng.gen_range(5..500) * 100 - 1,
    }
}

fn account(rng: &mut StdRng, products: usize) -> Account {
    let name = format!(
        "{}-{}-{:03}",
        COMPANY_WORDS.choose(rng).unwrap(),
        COMPANY_KINDS.choose(rng).unwrap(),
        rng.gen_range(0..1000)
    );
    let mut enterprise_projects = vec!["0".to_owned()];
    for _ in 0..rng.gen_range(0..3) {
        enterprise_projects.push(uuid_string(rng));
    }
    let orders: Vec<String> = (0..rng.gen_range(3..40)).map(|_| order_id(rng)).collect();
    let instances = (0..rng.gen_range(1..12))
        .map(|n| {
            let product = rng.gen_range(0..products);
            Instance {
                id: uuid_string(rng),
                name: format!("{}-{}-{:02}", name, ["prod", "test", "dev", "staging"].choose(rng).unwrap(), n),
                product,
                order_id: orders.choose(rng).unwrap().clone(),
            }
        })
        .collect();
    Account {
        id: format!("{:032x}", rng.gen::<u128>()),
        name,
        enterprise_projects,
        orders,
        instances,
        requirements: (0..rng.gen_range(0..5)).map(|_| format!("REQ{:016}", rng.gen_range(0..10u64.pow(16)))).collect(),
        private_offers: (0..rng.gen_range(0..4))
            .map(|_| format!("PO{:016}", rng.gen_range(0..10u64.pow(16))))
            .collect(),
        agreements: (0..rng.gen_range(1..6)).map(|_| uuid_string(rng)).collect(),
    }
}

fn user(rng: &mut StdRng, account: usize, is_root: bool) -> User {
    let name = format!(
        "{}.{}{}",
        GIVEN_NAMES.choose(rng).unwrap(),
        FAMILY_NAMES.choose(rng).unwrap(),
        if rng.gen_bool(0.6) { rng.gen_range(1..100).to_string() } else { String::new() }
    );
    let subnet = (rng.gen_range(1..224u8), rng.gen::<u8>(), rng.gen::<u8>());
    let source_ips = (0..rng.gen_range(1..4))
        .map(|_| format!("{}.{}.{}.{}", subnet.0, subnet.1, subnet.2, rng.gen_range(1..255u8)))
        .collect();
    User {
        account,
        id: format!("{:032x}", rng.gen::<u128>()),
        name,
        access_keys: (0..rng.gen_range(1..3)).map(|_| access_key(rng)).collect(),
        source_ips,
        is_root,
        agency: (!is_root && rng.gen_bool(0.05)).then(|| format!("ops_agency_{}", rng.gen_range(1..10))),
    }
}

/// An access key id: 20 upper-case letters and digits.
fn access_key(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..20).map(|_| *ALPHABET.choose(rng).unwrap() as char).collect()
}

/// A KooGallery-style order id: `order-` + a creation stamp + a serial.
pub fn order_id(rng: &mut StdRng) -> String {
    format!(
        "order-2026{:02}{:02}{:02}{:02}{:02}{:05}",
        rng.gen_range(1..13),
        rng.gen_range(1..29),
        rng.gen_range(0..24),
        rng.gen_range(0..60),
        rng.gen_range(0..60),
        rng.gen_range(0..100_000)
    )
}

/// A random (version 4) UUID drawn from the seeded generator.
pub fn uuid_string(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid().hyphenated().to_string()
}
