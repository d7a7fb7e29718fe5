//! Applying a configuration: start-up, reload and SIGHUP all come here, diff per process.

use super::*;

impl Supervisor {
    /// Apply a configuration to the table: the one path for start-up and reload. The changed
    /// programs in `hold` keep their old specs (a rolling reload brings them over). Returns
    /// the job that carries out the changes and the summary for `filc reload`.
    pub(super) fn apply(&mut self, new: Config, hold: &[String]) -> (Job, ReloadReply) {
        let mut plan = reload::diff(
            self.table
                .iter()
                .map(|(n, e)| (n.as_str(), e.spec.as_ref())),
            &new.programs,
        );
        let held = plan.hold(hold);
        let mut restart = Vec::new();
        for spec in &plan.changed {
            let e = self
                .table
                .get_mut(&spec.name)
                .expect("diffed against the table");
            let spec = Arc::new(spec.clone());
            let active = matches!(
                e.proc.state,
                ProcessState::Starting
                    | ProcessState::Running
                    | ProcessState::Backoff
                    | ProcessState::Stopping
            );
            if active {
                e.next_spec = Some(spec);
                restart.push(spec_name(&e.spec));
            } else {
                e.spec = spec;
                e.next_spec = None;
                e._watcher = watch(&e.spec, &self.tx);
            }
        }
        for spec in &plan.added {
            let spec = Arc::new(spec.clone());
            let watcher = watch(&spec, &self.tx);
            self.table.insert(
                spec.name.clone(),
                Entry {
                    spec,
                    next_spec: None,
                    proc: Proc::default(),
                    timer_gen: 0,
                    pgid: None,
                    cgroup: None,
                    start_wall: None,
                    stop_wall: None,
                    _watcher: watcher,
                },
            );
        }
        let mut stop: Vec<String> = plan.removed.clone();
        stop.extend(restart.iter().cloned());
        let mut start: Vec<String> = restart;
        start.extend(
            plan.added
                .iter()
                .filter(|s| s.autostart)
                .map(|s| s.name.clone()),
        );
        let mut phases = VecDeque::new();
        if !stop.is_empty() {
            phases.push_back(phase(Op::Stop, stop));
        }
        if !plan.removed.is_empty() {
            phases.push_back(phase(Op::Drop, plan.removed.clone()));
        }
        for tier in self.tiers(&start, false) {
            phases.push_back(phase(Op::Start, tier));
        }
        let mut changed: Vec<String> = plan.changed.iter().map(|s| s.name.clone()).collect();
        changed.extend(held.iter().cloned());
        let result = ReloadReply {
            added: plan.added.iter().map(|s| s.name.clone()).collect(),
            changed,
            removed: plan.removed.clone(),
            warnings: new.warnings.iter().map(ToString::to_string).collect(),
            rolling: held,
            op: None,
            op_error: None,
        };
        if !result.added.is_empty() || !result.changed.is_empty() || !result.removed.is_empty() {
            tracing::info!(added = ?result.added, changed = ?result.changed, removed = ?result.removed, held_for_a_roll = ?result.rolling, "Configuration applied.");
        }
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        crate::alert::configure(&new.daemon.on_change);
        self.config = new;
        self.applied.send_modify(|n| *n += 1);
        (
            Job {
                phases,
                current: None,
                reply: JobReply::None,
            },
            result,
        )
    }

    pub(super) fn reload_from_signal(&mut self) {
        if self.shutting_down {
            return;
        }
        self.load_off_loop(None, false);
    }

    /// Ask this before a reload stops or restarts running programs.
    pub fn set_reload_guard(&mut self, guard: ReloadGuard) {
        self.reload_guard = Some(guard);
    }

    /// The running programs applying `new` would stop (removed) or restart (changed).
    fn reload_stops(&self, new: &Config) -> ReloadStops {
        let plan = reload::diff(
            self.table
                .iter()
                .map(|(n, e)| (n.as_str(), e.spec.as_ref())),
            &new.programs,
        );
        let running = |n: &String| {
            self.table.get(n).is_some_and(|e| {
                matches!(
                    e.proc.state,
                    ProcessState::Starting | ProcessState::Running | ProcessState::Backoff
                )
            })
        };
        ReloadStops {
            removed: plan
                .removed
                .iter()
                .filter(|n| running(n))
                .cloned()
                .collect(),
            changed: plan
                .changed
                .iter()
                .map(|s| s.name.clone())
                .filter(running)
                .collect(),
        }
    }

    /// [`Request::Apply`]: each of `names` takes the applied configuration's spec (at once
    /// when it is not running, after its stop otherwise), as a reload would have done.
    pub(super) fn take_applied_specs(&mut self, names: &[String]) {
        for n in names {
            let Some(spec) = self.config.programs.iter().find(|s| &s.name == n) else {
                continue;
            };
            let Some(e) = self.table.get_mut(n) else {
                continue;
            };
            if *e.spec == *spec {
                continue;
            }
            let spec = Arc::new(spec.clone());
            if state::stop_settled(&e.proc) {
                e.spec = spec;
                e.next_spec = None;
                e._watcher = watch(&e.spec, &self.tx);
            } else {
                e.next_spec = Some(spec);
            }
        }
    }

    /// Read the configuration on the blocking pool (its files, include globs and all): a
    /// slow disk never stalls the loop. The result comes back as [`Request::Loaded`].
    pub(super) fn load_off_loop(&mut self, reply: Option<Reply<ReloadReply>>, force: bool) {
        let (path, env, tx) = (self.config_path.clone(), self.env.clone(), self.tx.clone());
        tokio::task::spawn_blocking(move || {
            let result = Box::new(config::load(&path, &env));
            let users = match result.as_ref() {
                Ok(c) => spawn::Users::resolve(c),
                Err(_) => spawn::Users::default(),
            };
            let _ = tx.send(Request::Loaded {
                result,
                users,
                reply,
                force,
            });
        });
    }

    /// The reload guard answered: apply, refuse, or (the table changed meanwhile) ask again.
    pub(super) fn guarded(
        &mut self,
        new: Config,
        users: spawn::Users,
        reply: Option<Reply<ReloadReply>>,
        verdict: Result<ReloadVerdict, String>,
        applied: u64,
    ) {
        if self.shutting_down {
            return self.loaded(Ok(new), users, reply, false);
        }
        if *self.applied.borrow() != applied {
            // Another configuration was applied meanwhile: read the files again, not this
            // older copy, and ask again.
            drop((new, users));
            return self.load_off_loop(reply, false);
        }
        match (verdict, reply) {
            (Ok(verdict), reply) => self.apply_loaded(new, users, reply, verdict),
            (Err(why), Some(reply)) => {
                tracing::warn!("Reload refused: {why}");
                let _ = reply.send(Err(ApiError::new(
                    ErrorKind::Refused,
                    format!("{why}; nothing was changed"),
                )));
            }
            (Err(why), None) => tracing::error!(
                "SIGHUP reload refused, nothing changed: {why} (a SIGHUP cannot force it: filc reload --force)"
            ),
        }
    }

    fn apply_loaded(
        &mut self,
        new: Config,
        users: spawn::Users,
        reply: Option<Reply<ReloadReply>>,
        verdict: ReloadVerdict,
    ) {
        self.users = users;
        let (mut job, mut result) = self.apply(new, &verdict.hold);
        if !result.rolling.is_empty() {
            // Applied: what brings the held programs over starts now (beside the loop).
            let started = match verdict.then {
                Some(start) => start(),
                None => Err("nothing was set to restart them".to_string()),
            };
            let by = if reply.is_some() {
                "reload"
            } else {
                "SIGHUP reload"
            };
            match started {
                Ok(id) => {
                    tracing::info!(programs = ?result.rolling, op = id, "{by}: these restart one at a time on their new settings, as operation {id} (filc etcd ops --follow {id}).");
                    result.op = Some(id);
                }
                Err(why) => {
                    tracing::warn!(programs = ?result.rolling, "{by}: these keep their old settings, the rolling reload did not start: {why}.");
                    result.op_error = Some(why);
                }
            }
        }
        if let Some(reply) = reply {
            job.reply = JobReply::Reload { result, reply };
        }
        self.jobs.push(job);
    }

    /// Apply a configuration read off the loop, or refuse it and change nothing.
    pub(super) fn loaded(
        &mut self,
        result: Result<Config, config::ConfigErrors>,
        users: spawn::Users,
        reply: Option<Reply<ReloadReply>>,
        force: bool,
    ) {
        if self.shutting_down {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ApiError::shutting_down()));
            }
            return;
        }
        match (result, reply) {
            (Ok(new), reply) => {
                let stops = self.reload_stops(&new);
                let guard = self
                    .reload_guard
                    .clone()
                    .filter(|_| !force && stops != ReloadStops::default());
                let Some(guard) = guard else {
                    return self.apply_loaded(new, users, reply, ReloadVerdict::default());
                };
                // Asked beside the loop (it talks to etcd); the answer comes back as a request.
                let (handle, tx) = (self.handle(), self.tx.clone());
                let applied = *self.applied.borrow();
                tokio::spawn(async move {
                    let verdict = guard(handle, stops).await;
                    let _ = tx.send(Request::Guarded {
                        config: Box::new(new),
                        users,
                        reply,
                        verdict,
                        applied,
                    });
                });
            }
            (Err(errors), Some(reply)) => {
                tracing::warn!("Reload refused: {errors}");
                let _ = reply.send(Err(ApiError {
                    kind: ErrorKind::BadRequest,
                    error: format!(
                        "invalid configuration in {}; nothing was changed",
                        self.config_path.display()
                    ),
                    details: errors.0.iter().map(|e| e.to_string()).collect(),
                }));
            }
            (Err(errors), None) => {
                tracing::error!("SIGHUP reload refused, nothing changed: {errors}")
            }
        }
    }
}
