//! The mapping's cost beside the cost of JSON itself, in the same run (these machines
//! are noisy, so only ratios mean anything): for one realistic contract,
//!
//! - `to_bundle/pkgw`: contract → FHIR resources → Bundle JSON bytes (written straight
//!   from the mapping's own tree, `pkgw::fhir::Json`, as the gateway writes them), against
//!   `to_bundle/serde_json`: the same Bundle, already a `serde_json::Value`, to bytes;
//!   `to_bundle/narrative`, `to_bundle/resources` (the tree, narrative included, built and
//!   dropped) and `to_bundle/written` (the tree's bytes written, the same bytes the
//!   reference writes) show where `to_bundle/pkgw`'s time goes;
//! - `from_bundle/pkgw`: Bundle JSON bytes → checked against the typed R4 model →
//!   contract, against `from_bundle/serde_json`: the same bytes to a `Value`;
//! - `invariants` (every rule of the contract) and `merge` (a three-way merge of two
//!   edits to different parts), against `to_bundle/serde_json` again.
//!
//! `cargo bench --bench mapping`; `scripts/load.sh` runs it and writes the ratios into
//! `BENCHMARKS.md`.

use std::hint::black_box;

/// The gateway's allocator (see `src/main.rs`), so the mapping is measured as it runs
/// there: with the system allocator, allocating and freeing the `Value` tree is about
/// half of the time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, criterion_group, criterion_main};
use pkgw::domain::{Contract, merge};
use pkgw::fhir::{ContractResources, Profile, from_fhir, to_fhir, to_json};
use pkgw::generate::Generator;

/// A generated contract with the most of everything among the first hundred.
fn contract() -> (pkgw::domain::ContractId, Contract) {
    let g = Generator::new(42);
    (0..100)
        .map(|n| (g.id(n), g.contract(n)))
        .max_by_key(|(_, c)| {
            c.agreed_times.len() + c.agreement.commitments.len() + c.agreement.what_matters.len()
        })
        .unwrap_or_else(|| (g.id(0), g.contract(0)))
}

fn benches(c: &mut Criterion) {
    let profile = Profile::default_profile();
    let (id, contract) = contract();
    let bundle = to_fhir(&id, &contract, &profile).to_bundle();
    let bytes = serde_json::to_vec(&bundle).unwrap_or_default();

    let mut to = c.benchmark_group("to_bundle");
    to.bench_function("pkgw", |b| {
        b.iter(|| {
            to_json(black_box(&id), black_box(&contract), &profile)
                .into_bundle()
                .to_vec()
        })
    });
    to.bench_function("serde_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&bundle)).unwrap_or_default())
    });
    // Where the mapping's time goes: the narrative alone, the resources without their
    // serialization, and the serialization alone.
    to.bench_function("narrative", |b| {
        b.iter(|| pkgw::fhir::narrative::care_plan_div(black_box(&contract), &profile))
    });
    let tree = to_json(&id, &contract, &profile).into_bundle();
    to.bench_function("written", |b| b.iter(|| black_box(&tree).to_vec()));
    to.bench_function("resources", |b| {
        b.iter(|| to_json(black_box(&id), black_box(&contract), &profile).into_bundle())
    });
    to.finish();

    let mut from = c.benchmark_group("from_bundle");
    from.bench_function("pkgw", |b| {
        b.iter(|| {
            let value: serde_json::Value =
                serde_json::from_slice(black_box(&bytes)).unwrap_or_default();
            ContractResources::from_bundle(&value)
                .and_then(|r| from_fhir(&r, &profile))
                .is_ok()
        })
    });
    from.bench_function("serde_json", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).is_ok())
    });
    from.finish();

    let mut rules = c.benchmark_group("domain");
    rules.bench_function("invariants", |b| {
        b.iter(|| black_box(&contract).validate().is_ok())
    });
    let mut ours = contract.clone();
    ours.agreement
        .what_matters
        .push("Att kunna cykla till jobbet".into());
    let mut theirs = contract.clone();
    if let Some(t) = theirs.agreed_times.first_mut() {
        t.what = "Återbesök hos fast läkarkontakt".into();
    }
    rules.bench_function("merge", |b| {
        b.iter(|| merge(black_box(&contract), black_box(&ours), black_box(&theirs)).is_ok())
    });
    rules.finish();
}

criterion_group!(mapping, benches);
criterion_main!(mapping);
