//! How an operation says its plan and its steps, and how the journal reads them back: one
//! home for the format, so that what an operator reads and what the next fild parses after a
//! crash are the same lines.
//!
//! ```text
//! plan 2/9: stop etcd-2 (voting members stay 3, quorum 2)
//! step 2/9: stop etcd-2
//! step 2/9: done
//! ```

/// A plan or step line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mark {
    Planned {
        index: usize,
        of: usize,
        what: String,
    },
    Begin {
        index: usize,
        of: usize,
        what: String,
    },
    Done {
        index: usize,
        of: usize,
    },
}

/// Step `index` of `of` in the plan, said before any change.
pub(crate) fn planned(index: usize, of: usize, what: &str) -> String {
    format!("plan {index}/{of}: {what}")
}

/// Step `index` begins.
pub(crate) fn begin(index: usize, of: usize, what: &str) -> String {
    format!("step {index}/{of}: {what}")
}

/// Step `index` is done.
pub(crate) fn done(index: usize, of: usize) -> String {
    format!("step {index}/{of}: done")
}

/// The mark a line carries, if any.
pub(crate) fn parse(line: &str) -> Option<Mark> {
    let (kind, rest) = line.split_once(' ')?;
    let (frac, what) = rest.split_once(": ")?;
    let (i, n) = frac.split_once('/')?;
    let (index, of) = (i.parse().ok()?, n.parse().ok()?);
    let what = what.to_string();
    match kind {
        "plan" => Some(Mark::Planned { index, of, what }),
        "step" if what == "done" => Some(Mark::Done { index, of }),
        "step" => Some(Mark::Begin { index, of, what }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(
            parse(&planned(2, 9, "stop etcd-2")),
            Some(Mark::Planned {
                index: 2,
                of: 9,
                what: "stop etcd-2".into()
            })
        );
        assert_eq!(
            parse(&begin(3, 9, "member remove boot2: a: b")),
            Some(Mark::Begin {
                index: 3,
                of: 9,
                what: "member remove boot2: a: b".into()
            })
        );
        assert_eq!(parse(&done(3, 9)), Some(Mark::Done { index: 3, of: 9 }));
        for other in [
            "stop etcd-2: stopped",
            "step x/9: y",
            "plan 1: z",
            "",
            "step 1/2",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
