//! CEL admission rules used in more than one schema.

use kube::core::cel::Rule;

/// On a list of racks: names are unique.
#[must_use]
pub fn racks_unique() -> Rule {
    Rule::new("self.all(r, self.exists_one(o, o.name == r.name))")
        .message("rack names must be unique")
}

/// On a list of racks: the racks that stay keep their order (no rename, no reorder).
#[must_use]
pub fn racks_keep_order() -> Rule {
    Rule::new(
        "self.filter(r, oldSelf.exists(o, o.name == r.name)).map(r, r.name) == \
         oldSelf.filter(o, self.exists(r, r.name == o.name)).map(o, o.name)",
    )
    .message("racks cannot be renamed or reordered; new racks go after the existing ones")
}

/// On a list of racks: new racks come after every existing one.
#[must_use]
pub fn racks_appended() -> Rule {
    Rule::new(
        "self.all(r, oldSelf.exists(o, o.name == r.name) || \
         self.map(x, x.name).indexOf(r.name) >= size(self.filter(x, oldSelf.exists(o, o.name == x.name))))",
    )
    .message("new racks can only be added after the existing ones")
}

/// The storage class name of a `storageConfig` (`''` when unset), as a CEL expression on `var`.
fn storage_class(var: &str) -> String {
    format!(
        "(has({var}.cassandraDataVolumeClaimSpec) && has({var}.cassandraDataVolumeClaimSpec.storageClassName) \
         ? {var}.cassandraDataVolumeClaimSpec.storageClassName : '')"
    )
}

/// On a `storageConfig`: the storage class of the data volumes cannot change.
#[must_use]
pub fn storage_class_immutable() -> Rule {
    Rule::new(format!(
        "{} == {}",
        storage_class("self"),
        storage_class("oldSelf")
    ))
    .message("the storage class of cassandraDataVolumeClaimSpec is immutable")
}

/// On a list of datacenter templates: a datacenter that keeps its name keeps its storage class.
#[must_use]
pub fn datacenter_storage_class_immutable() -> Rule {
    Rule::new(format!(
        "self.all(d, !has(d.storageConfig) || !oldSelf.exists(o, o.metadata.name == d.metadata.name && \
         has(o.storageConfig) && {} != {}))",
        storage_class("o.storageConfig"),
        storage_class("d.storageConfig")
    ))
    .message("the storage class of a datacenter's cassandraDataVolumeClaimSpec is immutable")
}

/// The storage request of a `storageConfig` (must exist), as a CEL quantity on `var`.
fn storage_request(var: &str) -> String {
    format!("quantity(string({var}.cassandraDataVolumeClaimSpec.resources.requests['storage']))")
}

/// Whether a `storageConfig` on `var` has a storage request, as a CEL expression.
fn has_storage_request(var: &str) -> String {
    format!(
        "(has({var}.cassandraDataVolumeClaimSpec) && has({var}.cassandraDataVolumeClaimSpec.resources) && \
         has({var}.cassandraDataVolumeClaimSpec.resources.requests) && \
         'storage' in {var}.cassandraDataVolumeClaimSpec.resources.requests)"
    )
}

/// On a `storageConfig`: the data volumes' storage request cannot shrink (Kubernetes cannot shrink a
/// volume, and a StatefulSet's claim templates cannot change anyway).
#[must_use]
pub fn storage_request_does_not_shrink() -> Rule {
    Rule::new(format!(
        "!{old_has} || ({new_has} && {new}.compareTo({old}) >= 0)",
        old_has = has_storage_request("oldSelf"),
        new_has = has_storage_request("self"),
        new = storage_request("self"),
        old = storage_request("oldSelf"),
    ))
    .message("the storage request of cassandraDataVolumeClaimSpec cannot shrink")
}
