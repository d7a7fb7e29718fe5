//! Jobs: multi-step requests (start a set, tiers, stop-then-drop, restart, reload, shutdown)
//! as queues of phases, advanced whenever the processes a phase waits for have settled, and
//! the outcome each process reports.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Start,
    Stop,
    Drop,
}

pub(super) struct Phase {
    pub(super) op: Op,
    pub(super) names: Vec<String>,
}

pub(super) enum JobReply {
    None,
    Action {
        op: UserOp,
        names: Vec<String>,
        before: HashMap<String, ProcessState>,
        reply: Reply<ActionReply>,
    },
    Reload {
        result: ReloadReply,
        reply: Reply<ReloadReply>,
    },
    Shutdown,
}

pub(super) struct Job {
    pub(super) phases: VecDeque<Phase>,
    pub(super) current: Option<Phase>,
    pub(super) reply: JobReply,
}

impl Job {
    pub(super) fn new(phases: Vec<Phase>, reply: JobReply) -> Job {
        Job {
            phases: phases.into(),
            current: None,
            reply,
        }
    }
}

pub(super) fn phase(op: Op, names: Vec<String>) -> Phase {
    Phase { op, names }
}

/// How long a shutdown waits to learn which programs go last.
pub(super) const STOP_ORDER_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Each tier split in two, its `last` programs after the others (empty parts dropped).
pub(super) fn last_after(tiers: Vec<Vec<String>>, last: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for tier in tiers {
        let (late, now): (Vec<String>, Vec<String>) =
            tier.into_iter().partition(|n| last.contains(n));
        out.extend([now, late].into_iter().filter(|p| !p.is_empty()));
    }
    out
}

/// A reload answers once its stops are done and its starts are issued (as supervisorctl
/// update does); the job itself goes on until every start has settled.
pub(super) fn reply_once_started(job: &mut Job) {
    if matches!(job.reply, JobReply::Reload { .. })
        && let JobReply::Reload { result, reply } =
            std::mem::replace(&mut job.reply, JobReply::None)
    {
        let _ = reply.send(Ok(result));
    }
}

impl Supervisor {
    pub(super) fn begin_action(
        &mut self,
        op: UserOp,
        names: Vec<String>,
        reply: Reply<ActionReply>,
    ) {
        let before = names
            .iter()
            .filter_map(|n| Some((n.clone(), self.table.get(n)?.proc.state)))
            .collect();
        let start = self.tiers(&names, false);
        let stop = self.tiers(&names, true);
        let phases = match op {
            UserOp::Start => start.into_iter().map(|t| phase(Op::Start, t)).collect(),
            UserOp::Stop => stop.into_iter().map(|t| phase(Op::Stop, t)).collect(),
            UserOp::Restart => stop
                .into_iter()
                .map(|t| phase(Op::Stop, t))
                .chain(start.into_iter().map(|t| phase(Op::Start, t)))
                .collect(),
        };
        self.jobs.push(Job::new(
            phases,
            JobReply::Action {
                op,
                names,
                before,
                reply,
            },
        ));
    }

    /// Priority tiers of `names`: ascending for start, descending for stop.
    pub(super) fn tiers(&self, names: &[String], reverse: bool) -> Vec<Vec<String>> {
        let mut t = reload::tiers(
            names
                .iter()
                .filter_map(|n| self.table.get(n).map(|e| e.spec.as_ref())),
        );
        if reverse {
            t.reverse();
        }
        t
    }

    /// Ask this at shutdown which programs to stop after the others.
    pub fn set_stop_order(&mut self, order: StopOrder) {
        self.stop_order = Some(order);
    }

    pub(super) fn begin_shutdown(&mut self, why: &str) {
        if self.shutting_down {
            return;
        }
        tracing::info!("Shutting down on {why}: stopping every program.");
        self.shutting_down = true;
        let names: Vec<String> = self.table.keys().cloned().collect();
        for n in &names {
            self.input(n, Input::Shutdown);
        }
        let Some(order) = self.stop_order.clone() else {
            return self.shutdown_job(&[]);
        };
        // Which programs go last (the etcd leader) is asked beside the loop, briefly.
        let (handle, tx) = (self.handle(), self.tx.clone());
        tokio::spawn(async move {
            // Its own task: a panic in the hook must not keep the shutdown from happening.
            let last =
                match tokio::time::timeout(STOP_ORDER_WAIT, tokio::spawn(order(handle))).await {
                    Ok(Ok(last)) => last,
                    _ => Vec::new(),
                };
            let _ = tx.send(Request::ShutdownOrder { last });
        });
    }

    /// The shutdown's stops: reverse priority tiers, each with its `last` programs after the
    /// others.
    pub(super) fn shutdown_job(&mut self, last: &[String]) {
        if self
            .jobs
            .iter()
            .any(|j| matches!(j.reply, JobReply::Shutdown))
        {
            return;
        }
        let names: Vec<String> = self.table.keys().cloned().collect();
        let phases = last_after(self.tiers(&names, true), last)
            .into_iter()
            .map(|t| phase(Op::Stop, t))
            .collect();
        self.jobs.push(Job::new(phases, JobReply::Shutdown));
    }

    // ----- jobs ---------------------------------------------------------------------------

    /// Advance every job whose current phase has settled; repeat until nothing moves.
    pub(super) fn progress(&mut self) {
        loop {
            let mut moved = false;
            let mut jobs = std::mem::take(&mut self.jobs);
            let mut i = 0;
            while i < jobs.len() {
                let settled = jobs[i]
                    .current
                    .as_ref()
                    .is_none_or(|ph| ph.names.iter().all(|n| self.settled(n, ph.op)));
                if !settled {
                    i += 1;
                    continue;
                }
                moved = true;
                match jobs[i].phases.pop_front() {
                    Some(next) => {
                        for n in &next.names {
                            self.issue(n, next.op);
                        }
                        if next.op == Op::Start {
                            reply_once_started(&mut jobs[i]);
                        }
                        jobs[i].current = Some(next);
                    }
                    None => {
                        let job = jobs.remove(i);
                        self.finish(job);
                    }
                }
            }
            jobs.append(&mut self.jobs);
            self.jobs = jobs;
            if !moved {
                break;
            }
        }
        self.guard.flush();
    }

    pub(super) fn settled(&self, name: &str, op: Op) -> bool {
        let Some(e) = self.table.get(name) else {
            return true;
        };
        match op {
            Op::Start => state::start_settled(&e.proc),
            Op::Stop => state::stop_settled(&e.proc),
            Op::Drop => true,
        }
    }

    pub(super) fn issue(&mut self, name: &str, op: Op) {
        match op {
            Op::Start => {
                if !self.shutting_down {
                    self.input(name, Input::Start)
                }
            }
            Op::Stop => self.input(name, Input::Stop),
            Op::Drop => {
                let droppable = self
                    .table
                    .get(name)
                    .is_some_and(|e| state::stop_settled(&e.proc));
                if droppable {
                    if let Some(dir) = self.table.remove(name).and_then(|e| e.cgroup) {
                        cgroup::remove_tree(&dir);
                    }
                    self.debounce.remove(name);
                }
            }
        }
    }

    pub(super) fn finish(&mut self, job: Job) {
        match job.reply {
            JobReply::None => {}
            JobReply::Shutdown => {
                tracing::info!("Every program is stopped.");
                self.exit = true;
            }
            JobReply::Reload { result, reply } => {
                let _ = reply.send(Ok(result));
            }
            JobReply::Action {
                op,
                names,
                before,
                reply,
            } => {
                let results = names
                    .iter()
                    .map(|n| self.outcome(op, n, before.get(n).copied()))
                    .collect();
                let _ = reply.send(Ok(ActionReply { results, op: None }));
            }
        }
    }

    pub(super) fn outcome(
        &self,
        op: UserOp,
        name: &str,
        before: Option<ProcessState>,
    ) -> ActionResult {
        outcome(op, name, self.table.get(name).map(|e| &e.proc), before)
    }
}

/// What a start, stop or restart of `name` came to, from its process (`None`: removed by a
/// reload meanwhile) and its state `before` the request. Pure.
pub(super) fn outcome(
    op: UserOp,
    name: &str,
    proc: Option<&Proc>,
    before: Option<ProcessState>,
) -> ActionResult {
    let Some(p) = proc else {
        return ActionResult {
            name: name.to_string(),
            ok: false,
            state: ProcessState::Stopped,
            message: "removed by a reload meanwhile".into(),
        };
    };
    let st = p.state;
    let was_running = before == Some(ProcessState::Running);
    let (ok, message) = match op {
        UserOp::Start | UserOp::Restart if st == ProcessState::Running => (
            true,
            match op {
                UserOp::Restart => "restarted",
                _ if was_running => "already started",
                _ => "started",
            }
            .to_string(),
        ),
        UserOp::Start | UserOp::Restart => {
            let why = p
                .spawn_error
                .clone()
                .unwrap_or_else(|| "abnormal termination".to_string());
            (false, format!("{why} ({})", st.as_str()))
        }
        UserOp::Stop if state::stop_settled(p) => {
            let stopped = matches!(
                before,
                Some(
                    ProcessState::Running
                        | ProcessState::Starting
                        | ProcessState::Backoff
                        | ProcessState::Stopping
                )
            );
            (true, if stopped { "stopped" } else { "not running" }.into())
        }
        UserOp::Stop => (false, format!("still {}", st.as_str())),
    };
    ActionResult {
        name: name.to_string(),
        ok,
        state: st,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(state: ProcessState) -> Proc {
        Proc {
            state,
            ..Proc::default()
        }
    }

    fn said(op: UserOp, p: Option<&Proc>, before: Option<ProcessState>) -> (bool, String) {
        let r = outcome(op, "x", p, before);
        (r.ok, r.message)
    }

    #[test]
    fn starts_and_restarts() {
        let running = proc(ProcessState::Running);
        assert_eq!(
            said(UserOp::Start, Some(&running), Some(ProcessState::Stopped)),
            (true, "started".into())
        );
        assert_eq!(
            said(UserOp::Start, Some(&running), Some(ProcessState::Running)),
            (true, "already started".into())
        );
        assert_eq!(
            said(UserOp::Restart, Some(&running), Some(ProcessState::Running)),
            (true, "restarted".into())
        );
        let mut failed = proc(ProcessState::Fatal);
        assert_eq!(
            said(UserOp::Start, Some(&failed), None),
            (false, "abnormal termination (FATAL)".into())
        );
        failed.spawn_error = Some("no such file".into());
        assert_eq!(
            said(UserOp::Start, Some(&failed), None),
            (false, "no such file (FATAL)".into())
        );
    }

    #[test]
    fn stops() {
        let stopped = proc(ProcessState::Stopped);
        assert_eq!(
            said(UserOp::Stop, Some(&stopped), Some(ProcessState::Running)),
            (true, "stopped".into())
        );
        assert_eq!(
            said(UserOp::Stop, Some(&stopped), Some(ProcessState::Exited)),
            (true, "not running".into())
        );
        let mut lingering = proc(ProcessState::Stopped);
        lingering.leftovers = true;
        assert_eq!(
            said(UserOp::Stop, Some(&lingering), None),
            (false, "still STOPPED".into())
        );
        assert_eq!(
            said(UserOp::Stop, None, None),
            (false, "removed by a reload meanwhile".into())
        );
    }
}

#[cfg(test)]
mod order_tests {
    use super::last_after;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_last_programs_go_after_the_others_of_their_tier() {
        let tiers = vec![v(&["etcd-gw"]), v(&["etcd-0", "etcd-1", "etcd-2"])];
        assert_eq!(
            last_after(tiers.clone(), &v(&["etcd-1"])),
            [v(&["etcd-gw"]), v(&["etcd-0", "etcd-2"]), v(&["etcd-1"])]
        );
        assert_eq!(last_after(tiers.clone(), &[]), tiers);
        // Alone in its tier, or unknown: nothing moves.
        assert_eq!(
            last_after(vec![v(&["a"]), v(&["b"])], &v(&["a", "z"])),
            [v(&["a"]), v(&["b"])]
        );
    }
}
