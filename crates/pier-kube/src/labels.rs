//! The labels `kube play` writes on what it creates, so `--down`, `--replace`
//! and `generate` find a pod's containers and volumes again.

/// The pod a container or volume belongs to.
pub const POD: &str = "io.pier.kube.pod";
/// `infra`, `init` or `app`.
pub const ROLE: &str = "io.pier.kube.role";
/// The container's name inside its pod.
pub const CONTAINER: &str = "io.pier.kube.container";
/// The kind of object the pod came from, and that object's name.
pub const KIND: &str = "io.pier.kube.kind";
pub const OWNER: &str = "io.pier.kube.owner";
/// The pod's Kubernetes labels, as JSON (on the infra container).
pub const POD_LABELS: &str = "io.pier.kube.labels";
/// What a volume stands for: `emptyDir`, `configMap`, `secret` or `persistentVolumeClaim`.
pub const VOLUME: &str = "io.pier.kube.volume";
/// The ConfigMap or Secret a volume holds the files of.
pub const SOURCE: &str = "io.pier.kube.source";
/// On a volume play made for a PersistentVolumeClaim document: the claim.
pub const CLAIM: &str = "io.pier.kube.claim";
