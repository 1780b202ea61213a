//! What the API server's schema and CEL rules cannot judge (pure): contexts without a
//! ClientConfig, names used twice, datacenters the api crate's checks refuse once the cluster
//! template is merged in, and changes that need what is already deployed (a datacenter moved to
//! another context). Any of these leaves everything as it is: `Valid=False` and an Event say why.

use std::collections::BTreeMap;

use k8ssandra_api::{
    k8ssandra::K8ssandraCluster,
    validation::{validate_datacenter, validate_k8ssandra_cluster},
};

use crate::build::DesiredDatacenter;

/// Every problem of the spec, in words a user can act on; empty when it can be acted on.
#[must_use]
pub fn problems(
    cluster: &K8ssandraCluster,
    known_contexts: &[String],
    desired: Option<&[DesiredDatacenter]>,
) -> Vec<String> {
    let mut problems: Vec<String> = match validate_k8ssandra_cluster(cluster, Some(known_contexts))
    {
        Ok(()) => Vec::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    };
    let Some(desired) = desired else {
        return problems;
    };
    let mut cassandra_names: BTreeMap<&str, &str> = BTreeMap::new();
    for DesiredDatacenter { datacenter, .. } in desired {
        let name = datacenter.metadata.name.as_deref().unwrap_or_default();
        if let Some(first) = cassandra_names.insert(datacenter.datacenter_name(), name)
            && first != name
        {
            problems.push(format!(
                "datacenters {first} and {name} have the same Cassandra datacenter name {:?}",
                datacenter.datacenter_name()
            ));
        }
        if let Err(errors) = validate_datacenter(datacenter) {
            problems.push(format!("datacenter {name}: {errors}"));
        }
    }
    let recorded = cluster.status.as_ref().and_then(|s| s.datacenters.as_ref());
    for DesiredDatacenter {
        context,
        datacenter,
    } in desired
    {
        let name = datacenter.metadata.name.as_deref().unwrap_or_default();
        let was = recorded
            .and_then(|r| r.get(name))
            .and_then(|s| s.context_name.as_deref());
        if let Some(was) = was
            && was != context
        {
            problems.push(format!(
                "datacenter {name} cannot move from context {was:?} to {context:?}: add a new \
                 datacenter in {context:?} and remove {name} instead"
            ));
        }
        if datacenter.spec.stopped == Some(true) {
            let entry = recorded.and_then(|r| r.get(name));
            if entry.is_none_or(|e| e.cassandra.is_none()) {
                problems.push(format!(
                    "datacenter {name} cannot be created stopped: create it running, then stop it"
                ));
            } else if entry.is_some_and(|e| e.rebuild.is_some()) {
                problems.push(format!(
                    "datacenter {name} cannot be stopped while it is rebuilt from another \
                     datacenter: stop it once its rebuild completed"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::desired_datacenters;
    use k8ssandra_api::k8ssandra::{K8ssandraClusterStatus, K8ssandraDatacenterStatus};

    fn cluster(yaml: &str) -> K8ssandraCluster {
        serde_yaml::from_str(yaml).expect("cluster")
    }

    const TWO_DCS: &str = r#"
apiVersion: k8ssandra.io/v1alpha1
kind: K8ssandraCluster
metadata: {name: demo, namespace: ns}
spec:
  cassandra:
    serverVersion: "4.1.5"
    storageConfig:
      cassandraDataVolumeClaimSpec:
        storageClassName: standard
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 5Gi}}
    datacenters:
      - metadata: {name: dc1}
        k8sContext: one
        size: 3
      - metadata: {name: dc2}
        k8sContext: two
        size: 3
"#;

    fn check(cluster: &K8ssandraCluster, contexts: &[&str]) -> Vec<String> {
        let contexts: Vec<String> = contexts.iter().map(|c| (*c).to_owned()).collect();
        let desired = desired_datacenters(cluster, &BTreeMap::new()).ok();
        problems(cluster, &contexts, desired.as_deref())
    }

    #[test]
    fn a_datacenter_is_neither_created_nor_rebuilt_stopped() {
        let stopped = TWO_DCS.replace(
            "k8sContext: two\n        size: 3",
            "k8sContext: two\n        size: 3\n        stopped: true",
        );
        let mut k8c = cluster(&stopped);
        let problems = check(&k8c, &["", "one", "two"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("dc2 cannot be created stopped"),
            "{problems:?}"
        );
        let mut entry = K8ssandraDatacenterStatus {
            context_name: Some("two".into()),
            cassandra: Some(Default::default()),
            ..Default::default()
        };
        k8c.status = Some(K8ssandraClusterStatus {
            datacenters: Some([("dc2".to_owned(), entry.clone())].into()),
            ..Default::default()
        });
        assert_eq!(check(&k8c, &["", "one", "two"]), Vec::<String>::new());
        entry.rebuild = Some(Default::default());
        k8c.status = Some(K8ssandraClusterStatus {
            datacenters: Some([("dc2".to_owned(), entry)].into()),
            ..Default::default()
        });
        let problems = check(&k8c, &["", "one", "two"]);
        assert!(problems[0].contains("while it is rebuilt"), "{problems:?}");
    }

    #[test]
    fn a_sound_spec_has_no_problem() {
        assert_eq!(
            check(&cluster(TWO_DCS), &["", "one", "two"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_unknown_context_is_named() {
        let problems = check(&cluster(TWO_DCS), &["", "one"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("\"two\""), "{problems:?}");
    }

    #[test]
    fn a_name_used_in_two_contexts_is_refused() {
        let spec = TWO_DCS.replace("{name: dc2}", "{name: dc1}");
        let problems = check(&cluster(&spec), &["", "one", "two"]);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("\"dc1\" is used by another datacenter")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_cassandra_name_used_twice_is_refused() {
        let spec = TWO_DCS.replace(
            "        k8sContext: two\n",
            "        k8sContext: two\n        datacenterName: dc1\n",
        );
        let problems = check(&cluster(&spec), &["", "one", "two"]);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("same Cassandra datacenter name")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_datacenter_cannot_move_to_another_context() {
        let mut moved = cluster(TWO_DCS);
        moved.status = Some(K8ssandraClusterStatus {
            datacenters: Some(BTreeMap::from([(
                "dc2".to_owned(),
                K8ssandraDatacenterStatus {
                    context_name: Some("one".to_owned()),
                    ..K8ssandraDatacenterStatus::default()
                },
            )])),
            ..K8ssandraClusterStatus::default()
        });
        let problems = check(&moved, &["", "one", "two"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("cannot move from context \"one\" to \"two\""),
            "{problems:?}"
        );
    }
}
