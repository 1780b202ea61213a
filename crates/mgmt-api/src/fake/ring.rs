//! The token ring, pure: which replicas a range has, the cluster probe, and the decommission check.
//!
//! One token per node and NetworkTopologyStrategy without rack awareness: enough to decide what an
//! operator observes (can a consistency level be reached, may a node leave).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::probe::ConsistencyLevel;

/// A token owner as the ring sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RingMember {
    pub(crate) datacenter: String,
    pub(crate) token: i64,
    pub(crate) alive: bool,
    /// Already leaving: not counted when asking what the ring looks like after everyone left.
    pub(crate) leaving: bool,
}

/// Replication of a keyspace, as far as the decommission check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replication {
    /// Node-local system keyspaces: never replicated.
    Local,
    /// SimpleStrategy: this many replicas in the whole cluster.
    Simple(u32),
    /// NetworkTopologyStrategy: replicas per datacenter.
    PerDatacenter(BTreeMap<String, u32>),
}

/// Token-range problems that keep `level` from being reached, by range (`[start, end]`); empty
/// when every range is fine.
pub(crate) fn probe(
    members: &[RingMember],
    local_dc: &str,
    level: ConsistencyLevel,
    rf_per_dc: u32,
) -> BTreeMap<String, Vec<String>> {
    let mut problems = BTreeMap::new();
    let datacenters: BTreeSet<&str> = members.iter().map(|m| m.datacenter.as_str()).collect();
    let mut tokens: Vec<i64> = members.iter().map(|m| m.token).collect();
    tokens.sort_unstable();
    if tokens.is_empty() {
        problems.insert(
            "[]".to_string(),
            vec![format!(
                "{rf_per_dc} replicas required, but only 0 nodes in the ring"
            )],
        );
        return problems;
    }
    let quorum = rf_per_dc / 2 + 1;
    let dc_count = u32::try_from(datacenters.len()).unwrap_or(u32::MAX);
    for (index, end) in tokens.iter().enumerate() {
        let start = tokens[(index + tokens.len() - 1) % tokens.len()];
        let per_dc: BTreeMap<&str, (u32, u32)> = datacenters
            .iter()
            .map(|dc| (*dc, replicas_in(members, dc, *end, rf_per_dc)))
            .collect();
        let mut reasons = Vec::new();
        let mut check_dc = |dc: &str, needed: u32| {
            let (replicas, alive) = per_dc.get(dc).copied().unwrap_or((0, 0));
            if replicas < rf_per_dc {
                reasons.push(format!(
                    "{rf_per_dc} replicas required, but only {replicas} nodes in the ring of {dc}"
                ));
            } else if alive < needed {
                reasons.push(format!(
                    "{needed} live replicas required in {dc}, but only {alive} are alive"
                ));
            }
        };
        match level {
            ConsistencyLevel::LocalOne => check_dc(local_dc, 1),
            ConsistencyLevel::LocalQuorum => check_dc(local_dc, quorum),
            ConsistencyLevel::EachQuorum => datacenters.iter().for_each(|dc| check_dc(dc, quorum)),
            total_level => {
                let needed = match total_level {
                    ConsistencyLevel::Two => 2,
                    ConsistencyLevel::Three => 3,
                    ConsistencyLevel::Quorum => rf_per_dc * dc_count / 2 + 1,
                    ConsistencyLevel::All => rf_per_dc * dc_count,
                    _ => 1,
                };
                let alive: u32 = per_dc.values().map(|(_, alive)| alive).sum();
                if alive < needed {
                    reasons.push(format!(
                        "{needed} live replicas required, but only {alive} are alive"
                    ));
                }
            }
        }
        if !reasons.is_empty() {
            problems.insert(format!("[{start}, {end}]"), reasons);
        }
    }
    problems
}

/// (replicas, alive replicas) in `dc` of the range ending at `token`: the first `rf` members of the
/// datacenter clockwise from the token.
fn replicas_in(members: &[RingMember], dc: &str, token: i64, rf: u32) -> (u32, u32) {
    let mut in_dc: Vec<&RingMember> = members.iter().filter(|m| m.datacenter == dc).collect();
    in_dc.sort_by_key(|m| m.token);
    let first = in_dc.iter().position(|m| m.token >= token).unwrap_or(0);
    let wanted = usize::try_from(rf).unwrap_or(usize::MAX).min(in_dc.len());
    let chosen = (0..wanted).map(|offset| in_dc[(first + offset) % in_dc.len()]);
    let (replicas, alive) = chosen.fold((0, 0), |(replicas, alive), member| {
        (replicas + 1, alive + u32::from(member.alive))
    });
    (replicas, alive)
}

/// Why the node in `dc` may not leave, if it may not: it is the last ring member, or some keyspace
/// would keep fewer nodes than its replication factor (Cassandra counts nodes after all pending
/// departures, the leaving node included, and refuses when that count is at most the factor).
pub(crate) fn decommission_refusal(
    members: &[RingMember],
    dc: &str,
    keyspaces: &BTreeMap<String, Replication>,
) -> Option<String> {
    if members.len() <= 1 {
        return Some("this is the only ring member left: nothing could take its data".into());
    }
    // The node itself is not marked leaving yet, so it is counted, as Cassandra does.
    let staying: Vec<&RingMember> = members.iter().filter(|m| !m.leaving).collect();
    let in_dc = staying.iter().filter(|m| m.datacenter == dc).count();
    for (name, replication) in keyspaces {
        let (factor, nodes) = match replication {
            Replication::Local => continue,
            Replication::Simple(factor) => (*factor, staying.len()),
            Replication::PerDatacenter(factors) => (factors.get(dc).copied().unwrap_or(0), in_dc),
        };
        let nodes = u32::try_from(nodes).unwrap_or(u32::MAX);
        if factor > 0 && nodes <= factor {
            return Some(format!(
                "too few nodes would stay to keep the replication factor of keyspace {name} \
                 (RF = {factor}, N = {nodes} including the leaving node)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(dc: &str, token: i64, alive: bool) -> RingMember {
        RingMember {
            datacenter: dc.into(),
            token,
            alive,
            leaving: false,
        }
    }

    #[test]
    fn local_quorum_with_all_nodes_up_is_healthy() {
        let ring = [
            member("dc1", -100, true),
            member("dc1", 0, true),
            member("dc1", 100, true),
        ];
        assert!(probe(&ring, "dc1", ConsistencyLevel::LocalQuorum, 3).is_empty());
    }

    #[test]
    fn local_quorum_fails_with_two_of_three_down() {
        let ring = [
            member("dc1", -100, true),
            member("dc1", 0, false),
            member("dc1", 100, false),
        ];
        let problems = probe(&ring, "dc1", ConsistencyLevel::LocalQuorum, 3);
        assert_eq!(problems.len(), 3);
        assert!(
            problems
                .values()
                .flatten()
                .all(|r| r.contains("only 1 are alive"))
        );
    }

    #[test]
    fn too_few_nodes_for_the_factor() {
        let ring = [member("dc1", 0, true)];
        let problems = probe(&ring, "dc1", ConsistencyLevel::LocalOne, 2);
        let reasons: Vec<_> = problems.values().flatten().collect();
        assert_eq!(
            reasons,
            vec!["2 replicas required, but only 1 nodes in the ring of dc1"]
        );
    }

    #[test]
    fn local_levels_ignore_other_datacenters() {
        let ring = [
            member("dc1", -5, true),
            member("dc1", 5, true),
            member("dc2", -1, false),
            member("dc2", 1, false),
        ];
        assert!(probe(&ring, "dc1", ConsistencyLevel::LocalQuorum, 2).is_empty());
        assert!(!probe(&ring, "dc1", ConsistencyLevel::EachQuorum, 2).is_empty());
        // Two live replicas of four: TWO works, QUORUM (three) does not.
        assert!(probe(&ring, "dc1", ConsistencyLevel::Two, 2).is_empty());
        assert!(!probe(&ring, "dc1", ConsistencyLevel::Quorum, 2).is_empty());
        assert!(!probe(&ring, "dc1", ConsistencyLevel::All, 2).is_empty());
    }

    #[test]
    fn decommission_needs_more_nodes_than_the_factor() {
        let keyspaces = BTreeMap::from([
            ("system".to_string(), Replication::Local),
            (
                "ks".to_string(),
                Replication::PerDatacenter(BTreeMap::from([("dc1".into(), 2)])),
            ),
        ]);
        let three = [
            member("dc1", 1, true),
            member("dc1", 2, true),
            member("dc1", 3, true),
        ];
        assert_eq!(decommission_refusal(&three, "dc1", &keyspaces), None);
        let two = &three[..2];
        let refusal = decommission_refusal(two, "dc1", &keyspaces).unwrap();
        assert!(refusal.contains("keyspace ks (RF = 2, N = 2 "), "{refusal}");
        assert!(
            decommission_refusal(&three[..1], "dc1", &BTreeMap::new())
                .unwrap()
                .contains("only ring member")
        );
    }

    #[test]
    fn simple_strategy_counts_the_whole_cluster_and_leaving_nodes_do_not_count() {
        let keyspaces =
            BTreeMap::from([("system_distributed".to_string(), Replication::Simple(3))]);
        let mut ring = vec![
            member("dc1", 1, true),
            member("dc2", 2, true),
            member("dc2", 3, true),
            member("dc1", 4, true),
        ];
        assert_eq!(decommission_refusal(&ring, "dc1", &keyspaces), None);
        ring[3].leaving = true;
        assert!(decommission_refusal(&ring, "dc1", &keyspaces).is_some());
    }
}
