//! CEL admission rules used in more than one schema.
//!
//! Kubernetes evaluates a transition rule (one that reads `oldSelf`) only where it can pair the old
//! and new value: not inside list items. It also refuses a CRD whose rules' estimated cost is over
//! budget, which is why lists and strings that rules loop over carry `maxItems` and `maxLength`.

use kube::core::cel::Rule;

/// On a list of racks: names are unique.
#[must_use]
pub fn racks_unique() -> Rule {
    Rule::new("self.all(rn, self.exists_one(ro, ro.name == rn.name))")
        .message("rack names must be unique")
}

/// The racks that stay in `new` keep the order they have in `old` (no rename, no reorder).
fn racks_keep_order_expr(new: &str, old: &str) -> String {
    format!(
        "{new}.filter(rn, {old}.exists(ro, ro.name == rn.name)).map(rn, rn.name) == \
         {old}.filter(ro, {new}.exists(rn, rn.name == ro.name)).map(ro, ro.name)"
    )
}

/// New racks in `new` come after every rack that was already in `old`: marking kept racks 0 and new
/// ones 1 gives a sorted list. (Positions through `indexOf` would say the same, but Kubernetes'
/// cost estimate for that is far over budget.)
fn racks_appended_expr(new: &str, old: &str) -> String {
    format!("{new}.map(rn, {old}.exists(ro, ro.name == rn.name) ? 0 : 1).isSorted()")
}

/// The storage class of the data volumes of a `storageConfig` (`''` when unset).
fn storage_class_expr(config: &str) -> String {
    format!(
        "(has({config}.cassandraDataVolumeClaimSpec) && has({config}.cassandraDataVolumeClaimSpec.storageClassName) \
         ? {config}.cassandraDataVolumeClaimSpec.storageClassName : '')"
    )
}

/// Applies a rule about an old and a new value to a field of `self` that may be unset.
fn on_field(field: &str, expr: fn(&str, &str) -> String) -> String {
    format!(
        "!has(self.{field}) || !has(oldSelf.{field}) || ({})",
        expr(&format!("self.{field}"), &format!("oldSelf.{field}"))
    )
}

/// Transition rules on `racks` and `storageConfig`, for the CassandraDatacenter spec and the
/// K8ssandraCluster's cluster-level settings.
///
/// The size of the data volumes has no transition rule: the operator judges it against the
/// volumes the running StatefulSets have (a grow needs `allow-storage-changes`, a shrink below
/// them is refused), so that a grow it refused can always be set back.
///
/// The same rules for each datacenter of a K8ssandraCluster would pair old and new datacenters by
/// name, a nested loop whose estimated cost Kubernetes refuses; such a change is refused when the
/// generated CassandraDatacenter, which carries these rules, is applied.
#[must_use]
pub fn storage_and_rack_rules() -> Vec<Rule> {
    vec![
        Rule::new(on_field("racks", racks_keep_order_expr))
            .message("racks cannot be renamed or reordered; new racks go after the existing ones"),
        Rule::new(on_field("racks", racks_appended_expr))
            .message("new racks can only be added after the existing ones"),
        Rule::new(on_field("storageConfig", storage_class_unchanged))
            .message("the storage class of cassandraDataVolumeClaimSpec is immutable"),
    ]
}

fn storage_class_unchanged(new: &str, old: &str) -> String {
    format!("{} == {}", storage_class_expr(new), storage_class_expr(old))
}

/// Appends `rules` to a schema's `x-kubernetes-validations`.
fn append_rules(schema: &mut schemars::Schema, rules: Vec<Rule>) {
    let rules = rules
        .into_iter()
        .filter_map(|rule| serde_json::to_value(rule).ok());
    if let Some(object) = schema.as_object_mut() {
        let list = object
            .entry("x-kubernetes-validations")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut() {
            list.extend(rules);
        }
    }
}

/// Schema transform adding [`storage_and_rack_rules`].
pub fn with_storage_and_rack_rules(schema: &mut schemars::Schema) {
    append_rules(schema, storage_and_rack_rules());
}
