//! What an etcd error means to an operation: classified by gRPC status code, and where etcd
//! says more only in text, by etcd's own error strings (its `rpctypes`), kept in one table.

/// The classes the operations act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The cluster is settling (election, a member starting, a lost connection): retry.
    Transient,
    /// `member remove` of an ID the cluster no longer has.
    MemberNotFound,
    /// `member add` of a peer URL the cluster already has (an earlier try went through).
    AlreadyExists,
    /// A learner not caught up yet: promote later.
    LearnerNotInSync,
    /// Promote of a member that is not a learner (already promoted).
    NotALearner,
    /// Compaction to a revision already compacted.
    Compacted,
    /// The backend quota is exceeded (NOSPACE).
    NoSpace,
    /// Anything else: an error to report.
    Other,
}

/// etcd's error strings, most specific first (one may contain another).
const ETCD_ERRORS: &[(&str, Class)] = &[
    (
        "can only promote a learner member which is in sync with leader",
        Class::LearnerNotInSync,
    ),
    ("can only promote a learner member", Class::NotALearner),
    ("member not found", Class::MemberNotFound),
    ("peer urls already exists", Class::AlreadyExists),
    ("member id already exist", Class::AlreadyExists),
    ("required revision has been compacted", Class::Compacted),
    ("database space exceeded", Class::NoSpace),
    ("unhealthy cluster", Class::Transient),
    ("not enough started members", Class::Transient),
    ("leader changed", Class::Transient),
    ("no leader", Class::Transient),
    ("request timed out", Class::Transient),
    ("too many requests", Class::Transient),
    ("server stopped", Class::Transient),
    ("not capable", Class::Transient),
];

/// Classify a message by etcd's strings alone.
pub fn classify_text(msg: &str) -> Option<Class> {
    let m = msg.to_ascii_lowercase();
    ETCD_ERRORS
        .iter()
        .find(|(s, _)| m.contains(s))
        .map(|(_, c)| *c)
}

/// Classify an error from etcd's client.
pub fn classify(e: &etcd_client::Error) -> Class {
    use etcd_client::Error as E;
    use tonic::Code;
    match e {
        E::GRpcStatus(s) => classify_text(s.message()).unwrap_or(match s.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled => Class::Transient,
            _ => Class::Other,
        }),
        E::TransportError(_) | E::IoError(_) => Class::Transient,
        other => classify_text(&other.to_string()).unwrap_or(Class::Other),
    }
}

/// A gRPC error as etcd's client returns it, for tests.
#[cfg(test)]
pub(crate) fn status(code: tonic::Code, msg: &str) -> etcd_client::Error {
    etcd_client::Error::GRpcStatus(tonic::Status::new(code, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_strings_win_over_codes() {
        use tonic::Code;
        assert_eq!(
            classify(&status(Code::Unavailable, "etcdserver: unhealthy cluster")),
            Class::Transient
        );
        assert_eq!(
            classify(&status(Code::NotFound, "etcdserver: member not found")),
            Class::MemberNotFound
        );
        assert_eq!(
            classify(&status(
                Code::FailedPrecondition,
                "etcdserver: Peer URLs already exists"
            )),
            Class::AlreadyExists
        );
        assert_eq!(
            classify(&status(
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader"
            )),
            Class::LearnerNotInSync
        );
        assert_eq!(
            classify(&status(
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member"
            )),
            Class::NotALearner
        );
        assert_eq!(
            classify(&status(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted"
            )),
            Class::Compacted
        );
        assert_eq!(
            classify(&status(
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded"
            )),
            Class::NoSpace
        );
    }

    #[test]
    fn codes_decide_the_rest() {
        use tonic::Code;
        assert_eq!(classify(&status(Code::Unavailable, "")), Class::Transient);
        assert_eq!(
            classify(&status(Code::DeadlineExceeded, "context deadline exceeded")),
            Class::Transient
        );
        assert_eq!(
            classify(&status(Code::InvalidArgument, "bad")),
            Class::Other
        );
        assert_eq!(
            classify(&etcd_client::Error::InvalidArgs("x".into())),
            Class::Other
        );
    }
}
