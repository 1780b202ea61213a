//! The schema calls of this operator's commands, `updatereplication` and `checkdecommission`:
//! pure decisions, and the Management API reads and writes they lead to.

use std::collections::BTreeMap;

use k8ssandra_mgmt_api::{KeyspaceReplication, KeyspaceReplicationRequest, ManagementApiClient};

/// Whether Cassandra or this operator manages the keyspace: a datacenter's removal never waits
/// for it (its replication is altered by the operator, or it is node-local).
#[must_use]
pub fn is_system_keyspace(name: &str) -> bool {
    name.starts_with("system") || name.starts_with("dse_") || name == "solr_admin"
}

/// The factors a keyspace should have: its NetworkTopologyStrategy factors with `wanted` laid
/// over them (0 removes a datacenter). `None` when nothing changes.
///
/// # Errors
/// When no replica would be left.
pub fn replication_change(
    keyspace: &str,
    current: &KeyspaceReplication,
    wanted: &BTreeMap<String, u32>,
) -> Result<Option<BTreeMap<String, u32>>, String> {
    let is_topology = current
        .class()
        .is_some_and(|c| c.ends_with("NetworkTopologyStrategy"));
    // Another strategy has no per-datacenter factors to keep: the wanted ones replace it.
    let before = if is_topology {
        current.datacenter_factors()
    } else {
        BTreeMap::new()
    };
    let mut after = before.clone();
    for (dc, factor) in wanted {
        if *factor == 0 {
            after.remove(dc);
        } else {
            after.insert(dc.clone(), *factor);
        }
    }
    if after.is_empty() {
        return Err(format!(
            "keyspace {keyspace} would have no replica left: refusing to alter it"
        ));
    }
    Ok((!is_topology || after != before).then_some(after))
}

/// The keyspaces other than the system ones with replicas in `datacenter`.
#[must_use]
pub fn replicating_to<'a>(
    datacenter: &str,
    keyspaces: impl IntoIterator<Item = (&'a str, &'a KeyspaceReplication)>,
) -> Vec<String> {
    keyspaces
        .into_iter()
        .filter(|(name, _)| !is_system_keyspace(name))
        .filter(|(_, r)| {
            r.datacenter_factors()
                .get(datacenter)
                .is_some_and(|f| *f > 0)
        })
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// `updatereplication` on one node: each keyspace read, and altered when it differs.
///
/// # Errors
/// The first call that fails, or a keyspace that does not exist, naming it.
pub async fn update_replication(
    client: &ManagementApiClient,
    wanted: &BTreeMap<String, BTreeMap<String, u32>>,
) -> Result<(), String> {
    for (keyspace, factors) in wanted {
        let current = client
            .keyspace_replication(keyspace)
            .await
            .map_err(|e| format!("reading the replication of {keyspace}: {e}"))?
            .ok_or_else(|| format!("keyspace {keyspace} does not exist"))?;
        let Some(after) = replication_change(keyspace, &current, factors)? else {
            continue;
        };
        let request = KeyspaceReplicationRequest::new(
            keyspace,
            after.iter().map(|(dc, f)| (dc.as_str(), *f)),
        );
        client
            .alter_keyspace(&request)
            .await
            .map_err(|e| format!("altering {keyspace}: {e}"))?;
    }
    Ok(())
}

/// `checkdecommission` on one node.
///
/// # Errors
/// When a keyspace other than the system ones still replicates to `datacenter`, naming each, or
/// when a read fails.
pub async fn check_decommission(
    client: &ManagementApiClient,
    datacenter: &str,
) -> Result<(), String> {
    let names = client
        .list_keyspaces(None)
        .await
        .map_err(|e| format!("listing keyspaces: {e}"))?;
    let mut replications = Vec::new();
    for name in names.iter().filter(|n| !is_system_keyspace(n)) {
        if let Some(replication) = client
            .keyspace_replication(name)
            .await
            .map_err(|e| format!("reading the replication of {name}: {e}"))?
        {
            replications.push((name.as_str(), replication));
        }
    }
    let blocking = replicating_to(datacenter, replications.iter().map(|(n, r)| (*n, r)));
    if blocking.is_empty() {
        return Ok(());
    }
    Err(format!(
        "keyspace{} {} still replicate{} to datacenter {datacenter}: ALTER {} to drop {datacenter} \
         first",
        if blocking.len() == 1 { "" } else { "s" },
        blocking.join(", "),
        if blocking.len() == 1 { "s" } else { "" },
        if blocking.len() == 1 { "it" } else { "them" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replication(pairs: &[(&str, &str)]) -> KeyspaceReplication {
        KeyspaceReplication {
            options: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    const NTS: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";

    #[test]
    fn factors_are_laid_over_the_current_ones() {
        let current = replication(&[("class", NTS), ("dc1", "3"), ("old", "3")]);
        let wanted = BTreeMap::from([("dc2".to_owned(), 3), ("old".to_owned(), 0)]);
        assert_eq!(
            replication_change("ks", &current, &wanted),
            Ok(Some(BTreeMap::from([
                ("dc1".to_owned(), 3),
                ("dc2".to_owned(), 3)
            ])))
        );
    }

    #[test]
    fn nothing_changes_when_the_factors_are_there() {
        let current = replication(&[("class", NTS), ("dc1", "3"), ("dc2", "3")]);
        let wanted = BTreeMap::from([("dc2".to_owned(), 3), ("gone".to_owned(), 0)]);
        assert_eq!(replication_change("ks", &current, &wanted), Ok(None));
    }

    #[test]
    fn simple_strategy_is_replaced_and_no_keyspace_is_left_without_replicas() {
        let simple = replication(&[
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", "2"),
        ]);
        let wanted = BTreeMap::from([("dc1".to_owned(), 2)]);
        assert_eq!(
            replication_change("ks", &simple, &wanted),
            Ok(Some(wanted.clone()))
        );
        let current = replication(&[("class", NTS), ("dc1", "3")]);
        let error = replication_change("ks", &current, &BTreeMap::from([("dc1".to_owned(), 0)]))
            .unwrap_err();
        assert!(error.contains("no replica left"), "{error}");
    }

    #[test]
    fn only_user_keyspaces_with_replicas_there_hold_a_removal() {
        let to_dc3 = replication(&[("class", NTS), ("dc1", "3"), ("dc3", "3")]);
        let zero = replication(&[("class", NTS), ("dc1", "3"), ("dc3", "0")]);
        let elsewhere = replication(&[("class", NTS), ("dc1", "3")]);
        let keyspaces = [
            ("system_auth", &to_dc3),
            ("orders", &to_dc3),
            ("zeroed", &zero),
            ("users", &elsewhere),
        ];
        assert_eq!(replicating_to("dc3", keyspaces), vec!["orders".to_owned()]);
    }
}
