//! Names of the objects the operators create, and the Kubernetes name rules they must obey.
//!
//! Object names follow upstream exactly (`<cluster>-<dc>-service`, `<cluster>-<dc>-<rack>-sts`, ...) so that
//! tools and scripts written for the K8ssandra stack find the same objects.

/// Longest name a generated StatefulSet may have: its pods add `-<ordinal>`, and Kubernetes adds a
/// controller-revision-hash label (`<sts>-<hash>`, at most 63 characters) to each pod.
pub const MAX_STATEFULSET_NAME_LEN: usize = 60;

/// Turns any string into a DNS-1035 label the way upstream does: a valid label is kept as it is;
/// otherwise it is lower-cased, `_` becomes `-`, and only the runs that form valid label pieces are kept.
#[must_use]
pub fn cleanup_for_kubernetes(input: &str) -> String {
    if is_dns1035_label(input) {
        return input.to_owned();
    }
    let lowered = input.to_lowercase().replace('_', "-");
    keep_valid_runs(
        &lowered,
        |c| c.is_ascii_lowercase(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
        |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
    )
}

/// Turns any string into a DNS-1123 subdomain the way upstream does for rack names in object
/// names: a valid subdomain is kept; otherwise it is lower-cased, `_` becomes `-`, and only the runs
/// that form valid dot-separated labels are kept.
#[must_use]
pub fn cleanup_subdomain(input: &str) -> String {
    if is_dns1123_subdomain(input) {
        return input.to_owned();
    }
    let chars: Vec<char> = input.to_lowercase().replace('_', "-").chars().collect();
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    // Index of the last character of the label starting at `start` (greedy, ends on alnum).
    let label_end = |start: usize| {
        let mut end = start;
        let mut j = start + 1;
        while j < chars.len() && (alnum(chars[j]) || chars[j] == '-') {
            if alnum(chars[j]) {
                end = j;
            }
            j += 1;
        }
        end
    };
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if !alnum(chars[i]) {
            i += 1;
            continue;
        }
        let mut end = label_end(i);
        while end + 2 < chars.len() && chars[end + 1] == '.' && alnum(chars[end + 2]) {
            end = label_end(end + 2);
        }
        out.extend(&chars[i..=end]);
        i = end + 1;
    }
    out
}

/// Turns any string into a valid label value the way upstream does: spaces are dropped and only runs
/// that start and end with an alphanumeric character (with `-`, `_`, `.` inside) are kept.
#[must_use]
pub fn clean_label_value(input: &str) -> String {
    let no_spaces: String = input.chars().filter(|c| *c != ' ').collect();
    keep_valid_runs(
        &no_spaces,
        |c| c.is_ascii_alphanumeric(),
        |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
        |c| c.is_ascii_alphanumeric(),
    )
}

/// Concatenates every maximal run that starts with a `first` character, continues with `inner`
/// characters and ends with a `last` character (a greedy left-to-right scan, like a regex find-all).
fn keep_valid_runs(
    input: &str,
    first: impl Fn(char) -> bool,
    inner: impl Fn(char) -> bool,
    last: impl Fn(char) -> bool,
) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if !first(chars[i]) {
            i += 1;
            continue;
        }
        let mut end = i;
        let mut j = i + 1;
        while j < chars.len() && inner(chars[j]) {
            if last(chars[j]) {
                end = j;
            }
            j += 1;
        }
        out.extend(&chars[i..=end]);
        i = end + 1;
    }
    out
}

/// Whether `s` is a DNS-1035 label: at most 63 characters, lower-case alphanumerics or `-`, starting
/// with a letter and ending with an alphanumeric.
#[must_use]
pub fn is_dns1035_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// Whether `s` is a DNS-1123 label: at most 63 characters, lower-case alphanumerics or `-`, starting
/// and ending with an alphanumeric.
#[must_use]
pub fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Whether `s` is a DNS-1123 subdomain (the rule for most object names): at most 253 characters,
/// dot-separated DNS-1123 labels.
#[must_use]
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Whether `s` may be used as a label value: empty, or at most 63 characters of alphanumerics,
/// `-`, `_`, `.`, starting and ending with an alphanumeric.
#[must_use]
pub fn is_label_value(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.is_empty()
        || (bytes.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric())
}

/// Name of the headless Service that selects the seed pods of every datacenter of a cluster.
#[must_use]
pub fn seed_service(cluster_name: &str) -> String {
    format!("{}-seed-service", cleanup_for_kubernetes(cluster_name))
}

/// Name of the Secret holding the superuser credentials when the user names none.
#[must_use]
pub fn default_superuser_secret(cluster_name: &str) -> String {
    format!("{}-superuser", cleanup_for_kubernetes(cluster_name))
}

/// The `<cluster>-<dc>` prefix of every per-datacenter object; `dc_label_name` is the datacenter's
/// label resource name (see [`crate::cassandra::CassandraDatacenter::label_resource_name`]).
fn dc_prefix(cluster_name: &str, dc_label_name: &str) -> String {
    format!("{}-{dc_label_name}", cleanup_for_kubernetes(cluster_name))
}

/// Name of the headless Service of a datacenter's ready pods.
#[must_use]
pub fn datacenter_service(cluster_name: &str, dc_label_name: &str) -> String {
    format!("{}-service", dc_prefix(cluster_name, dc_label_name))
}

/// Name of the headless Service of all of a datacenter's pods, ready or not (the StatefulSets' service).
#[must_use]
pub fn all_pods_service(cluster_name: &str, dc_label_name: &str) -> String {
    format!(
        "{}-all-pods-service",
        dc_prefix(cluster_name, dc_label_name)
    )
}

/// Name of the selector-less Service whose EndpointSlices list a datacenter's additional seeds.
#[must_use]
pub fn additional_seed_service(cluster_name: &str, dc_label_name: &str) -> String {
    format!(
        "{}-additional-seed-service",
        dc_prefix(cluster_name, dc_label_name)
    )
}

/// Name of a datacenter's NodePort Service.
#[must_use]
pub fn node_port_service(cluster_name: &str, dc_label_name: &str) -> String {
    format!(
        "{}-node-port-service",
        dc_prefix(cluster_name, dc_label_name)
    )
}

/// Name of the Secret the data plane copies a datacenter's `configSecret` into.
#[must_use]
pub fn datacenter_config_secret(cluster_name: &str, dc_label_name: &str) -> String {
    format!("{}-config", dc_prefix(cluster_name, dc_label_name))
}

/// Name of the StatefulSet of one rack.
#[must_use]
pub fn rack_statefulset(cluster_name: &str, dc_label_name: &str, rack_name: &str) -> String {
    format!(
        "{}-{}-sts",
        dc_prefix(cluster_name, dc_label_name),
        cleanup_subdomain(rack_name)
    )
}

/// Name of a datacenter's PodDisruptionBudget.
#[must_use]
pub fn pod_disruption_budget(dc_label_name: &str) -> String {
    format!("{dc_label_name}-pdb")
}

/// Name of the pod with `ordinal` in a rack's StatefulSet.
#[must_use]
pub fn pod(statefulset_name: &str, ordinal: u32) -> String {
    format!("{statefulset_name}-{ordinal}")
}

/// Name of the data volume claim of a pod (from the `server-data` volume claim template).
#[must_use]
pub fn server_data_pvc(pod_name: &str) -> String {
    format!("server-data-{pod_name}")
}

/// The ordinal at the end of a StatefulSet pod's name (0 when there is none).
#[must_use]
pub fn pod_ordinal(pod_name: &str) -> u32 {
    pod_name
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Splits `node_count` nodes over `rack_count` racks as upstream does: evenly, the first racks
/// taking one more node each until the remainder is used up.
#[must_use]
pub fn split_racks(node_count: u32, rack_count: usize) -> Vec<u32> {
    let Ok(racks) = u32::try_from(rack_count) else {
        return Vec::new();
    };
    if racks == 0 {
        return Vec::new();
    }
    let (per_rack, extra) = (node_count / racks, node_count % racks);
    (0..racks)
        .map(|i| per_rack + u32::from(i < extra))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_keeps_valid_labels_and_repairs_invalid_ones() {
        assert_eq!(cleanup_for_kubernetes("demo"), "demo");
        assert_eq!(cleanup_for_kubernetes("Test Cluster"), "testcluster");
        assert_eq!(cleanup_for_kubernetes("my_cluster"), "my-cluster");
        assert_eq!(cleanup_for_kubernetes("1cluster-"), "cluster");
        assert_eq!(cleanup_for_kubernetes("a.b"), "ab");
        assert_eq!(cleanup_for_kubernetes("dc-1--"), "dc-1");
    }

    #[test]
    fn subdomains_are_cleaned_like_upstream() {
        assert_eq!(cleanup_subdomain("rack1"), "rack1");
        assert_eq!(cleanup_subdomain("rack.a"), "rack.a");
        assert_eq!(cleanup_subdomain("Rack_One"), "rack-one");
        assert_eq!(cleanup_subdomain("Rack.One_x"), "rack.one-x");
        assert_eq!(cleanup_subdomain("a-.b"), "ab");
        assert_eq!(cleanup_subdomain("-x.y-"), "x.y");
        assert_eq!(cleanup_subdomain("a b"), "ab");
    }

    #[test]
    fn label_values_are_cleaned_like_upstream() {
        assert_eq!(clean_label_value("Test Cluster"), "TestCluster");
        assert_eq!(clean_label_value("-a_b.c-"), "a_b.c");
        assert_eq!(clean_label_value("dc1"), "dc1");
        assert!(is_label_value(&clean_label_value("  weird__name!!  ")));
    }

    #[test]
    fn name_rules() {
        assert!(is_dns1035_label("dc1"));
        assert!(!is_dns1035_label("1dc"));
        assert!(!is_dns1035_label("dc_1"));
        assert!(!is_dns1035_label(&"a".repeat(64)));
        assert!(is_dns1123_label("1dc"));
        assert!(is_dns1123_subdomain("k8ssandra.io"));
        assert!(!is_dns1123_subdomain("K8ssandra.io"));
        assert!(is_label_value(""));
        assert!(!is_label_value("-x"));
    }

    #[test]
    fn object_names_follow_upstream() {
        assert_eq!(seed_service("Test Cluster"), "testcluster-seed-service");
        assert_eq!(datacenter_service("demo", "dc1"), "demo-dc1-service");
        assert_eq!(all_pods_service("demo", "dc1"), "demo-dc1-all-pods-service");
        assert_eq!(
            additional_seed_service("demo", "dc1"),
            "demo-dc1-additional-seed-service"
        );
        assert_eq!(
            node_port_service("demo", "dc1"),
            "demo-dc1-node-port-service"
        );
        assert_eq!(
            rack_statefulset("demo", "dc1", "rack_1"),
            "demo-dc1-rack-1-sts"
        );
        assert_eq!(pod_disruption_budget("dc1"), "dc1-pdb");
        assert_eq!(pod("demo-dc1-r1-sts", 2), "demo-dc1-r1-sts-2");
        assert_eq!(
            server_data_pvc("demo-dc1-r1-sts-2"),
            "server-data-demo-dc1-r1-sts-2"
        );
        assert_eq!(default_superuser_secret("demo"), "demo-superuser");
        assert_eq!(
            datacenter_config_secret("Demo_1", "dc1"),
            "demo-1-dc1-config"
        );
    }

    #[test]
    fn racks_split_evenly_first_racks_take_the_remainder() {
        assert_eq!(split_racks(3, 3), vec![1, 1, 1]);
        assert_eq!(split_racks(7, 3), vec![3, 2, 2]);
        assert_eq!(split_racks(2, 3), vec![1, 1, 0]);
        assert_eq!(split_racks(5, 0), Vec::<u32>::new());
    }
}
