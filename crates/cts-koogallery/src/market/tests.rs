//! The state machine against random command sequences: refusals change nothing, and replaying what succeeded
//! rebuilds the same state (what the journal relies on).

use super::*;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;
const BUYER: &str = "user-00000002";
const OTHER_BUYER: &str = "user-00000003";
const SELLER: &str = "user-00000001";

/// A seller with one product and two buyers in two accounts; answers the commands that built it.
fn populated() -> (Marketplace, Vec<(i64, Option<String>, Command)>) {
    let plans = vec![
        Plan { name: "basic".into(), monthly_price_cents: 1_000 },
        Plan { name: "pro".into(), monthly_price_cents: 3_000 },
    ];
    let user = |account: &str, name: &str, role| Command::CreateUser {
        account_id: account.into(),
        name: name.into(),
        role,
        password_hash: "h".into(),
        salt: "s".into(),
    };
    let setup = vec![
        Command::CreateAccount { name: "seller".into() },
        Command::CreateAccount { name: "buyer".into() },
        Command::CreateAccount { name: "other".into() },
        user("acct-00000001", "ops", Role::Seller),
        user("acct-00000002", "alice", Role::Buyer),
        user("acct-00000003", "bob", Role::Buyer),
        Command::CreateProduct {
            seller_account_id: "acct-00000001".into(),
            name: "P".into(),
            plans,
            guarantee_days: 7,
        },
    ];
    let mut market = Marketplace::new();
    let journal: Vec<_> = setup.into_iter().map(|command| (T0, None, command)).collect();
    for (at, actor, command) in &journal {
        market.execute(*at, actor.as_deref(), command).unwrap();
    }
    (market, journal)
}

fn small_id(prefix: &'static str) -> impl Strategy<Value = String> {
    (1usize..4).prop_map(move |n| format!("{prefix}{n:08}"))
}

fn command() -> impl Strategy<Value = (Option<&'static str>, Command)> {
    let buyer = prop::sample::select(vec![Some(BUYER), Some(OTHER_BUYER)]);
    let plan = prop::sample::select(vec!["basic".to_owned(), "pro".to_owned(), "gold".to_owned()]);
    prop_oneof![
        (buyer.clone(), plan.clone(), 0u32..4, prop::option::of(small_id("offer-"))).prop_map(
            |(actor, plan, months, offer)| {
                let product_id = "prod-00000001".to_owned();
                (actor, Command::CreateOrder { product_id, plan, period_months: months, private_offer_id: offer })
            }
        ),
        (buyer.clone(), small_id("CS")).prop_map(|(a, order_id)| (a, Command::CancelOrder { order_id })),
        (buyer.clone(), small_id("res-"), 1u32..3)
            .prop_map(|(a, resource_id, period_months)| (a, Command::RenewOrder { resource_id, period_months })),
        (buyer.clone(), small_id("res-"), plan)
            .prop_map(|(a, resource_id, plan)| (a, Command::ChangeOrder { resource_id, plan })),
        (buyer.clone(), small_id("res-"), -10i64..5_000).prop_map(|(a, resource_id, refund_cents)| {
            (a, Command::UnsubscribeByNegotiation { resource_id, refund_cents, reason: "r".into() })
        }),
        (
            buyer.clone(),
            small_id("res-"),
            prop::sample::select(vec![
                ExpiryStrategy::AutoRenewal,
                ExpiryStrategy::ManualRenewal,
                ExpiryStrategy::ReleaseAtExpiry
            ])
        )
            .prop_map(|(a, resource_id, strategy)| (a, Command::SetResourceStrategy { resource_id, strategy })),
        (buyer.clone(), small_id("res-")).prop_map(|(a, resource_id)| (a, Command::CloseResource { resource_id })),
        (buyer.clone(), small_id("res-"))
            .prop_map(|(a, resource_id)| (a, Command::SubmitRequirement { resource_id, content: "c".into() })),
        (buyer.clone(), small_id("req-"), any::<bool>()).prop_map(|(a, requirement_id, accepted)| {
            (a, Command::ConfirmAcceptance { requirement_id, accepted, comment: None })
        }),
        (buyer.clone(), small_id("req-"))
            .prop_map(|(a, requirement_id)| (a, Command::AppealRequirement { requirement_id, reason: "r".into() })),
        (buyer, prop::sample::select(vec!["prod-00000001".to_owned(), "prod-00000009".to_owned()]))
            .prop_map(|(a, product_id)| (a, Command::AddFavorites { product_id })),
        small_id("CS").prop_map(|order_id| (Some(SELLER), Command::DeliverOrder { order_id })),
        (small_id("unsub-"), any::<bool>()).prop_map(|(unsubscription_id, agree)| (
            Some(SELLER),
            Command::ReviewUnsubscription { unsubscription_id, agree }
        )),
        small_id("req-").prop_map(|requirement_id| (Some(SELLER), Command::AcceptRequirement { requirement_id })),
        small_id("req-")
            .prop_map(|requirement_id| (Some(SELLER), Command::DeliverRequirement { requirement_id, note: None })),
        prop::sample::select(vec!["acct-00000002", "acct-00000003"]).prop_map(|buyer| {
            let offer = Command::CreatePrivateOffer {
                buyer_account_id: buyer.into(),
                product_id: "prod-00000001".into(),
                plan: "pro".into(),
                monthly_price_cents: 2_000,
                valid_days: 10,
            };
            (Some(SELLER), offer)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn refusals_change_nothing_and_replay_rebuilds_the_state(
        steps in prop::collection::vec((command(), 0i64..(20 * DAY_MS)), 1..80)
    ) {
        let (mut market, mut journal) = populated();
        let mut at = T0;
        for ((actor, command), pause) in steps {
            at += pause;
            if !market.advance_to(at).is_empty() {
                journal.push((at, None, Command::Tick));
            }
            let before = market.clone();
            match market.execute(at, actor, &command) {
                Ok(_) if command.mutates() => journal.push((at, actor.map(str::to_owned), command)),
                Ok(_) => prop_assert_eq!(&market, &before, "a query changed the state"),
                Err(_) => prop_assert_eq!(&market, &before, "a refused command changed the state"),
            }
        }
        let mut replayed = Marketplace::new();
        for (at, actor, command) in &journal {
            replayed.execute(*at, actor.as_deref(), command).unwrap();
        }
        prop_assert_eq!(replayed, market);
    }
}

#[test]
fn payment_is_confirmed_after_the_delay_and_creates_the_resource() {
    let (mut market, _) = populated();
    let order = Command::CreateOrder {
        product_id: "prod-00000001".into(),
        plan: "pro".into(),
        period_months: 2,
        private_offer_id: None,
    };
    let placed = market.execute(T0, Some(BUYER), &order).unwrap();
    assert_eq!(placed.body["amount_cents"], 6_000);
    assert_eq!(market.next_due_time(), Some(T0 + PAYMENT_DELAY_MS));
    assert!(market.advance_to(T0 + PAYMENT_DELAY_MS - 1).is_empty());
    let events = market.advance_to(T0 + PAYMENT_DELAY_MS);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].trace_name, events[0].at), ("confirmPayment", T0 + PAYMENT_DELAY_MS));
    let resource = &market.resources["res-00000001"];
    assert_eq!(resource.expires_at, T0 + PAYMENT_DELAY_MS + 2 * MONTH_MS);
    assert_eq!(resource.paid_cents, 6_000);
    assert_eq!(market.next_due_time(), Some(resource.expires_at));
}
