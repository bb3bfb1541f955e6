//! The documentation users triage with says what the code does.

use std::collections::BTreeSet;

use ahlt_operator::controller::all_reasons;
use ahlt_operator::controller::status::ConditionType;

fn conditions_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/conditions.md");
    std::fs::read_to_string(path).expect("docs/conditions.md")
}

/// The reasons in the first column of the tables (`| False `Reason` | ...`); a condition
/// type named there ("a `DatabaseReady` reason") is a reference, not a reason.
fn documented_reasons(doc: &str) -> BTreeSet<String> {
    let types = ConditionType::ALL.map(ConditionType::as_str);
    doc.lines()
        .filter(|l| l.starts_with("| "))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .filter(|word| !types.contains(word))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_reason_in_code_is_documented_and_every_documented_reason_exists() {
    let documented = documented_reasons(&conditions_doc());
    let code: BTreeSet<String> = all_reasons().into_iter().map(str::to_owned).collect();
    let undocumented: Vec<&String> = code.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "reasons set by the operator but missing in docs/conditions.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "reasons in docs/conditions.md the operator never sets: {unknown:?}"
    );
}
