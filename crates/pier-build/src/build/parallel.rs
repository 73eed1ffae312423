//! Builds the needed stages, each on its own thread as soon as the stages it
//! reads are built, so independent stages run at the same time.
//!
//! The output stays what the serial builder printed: each stage's messages
//! are held back until every earlier stage (in Dockerfile order) has
//! finished, so the stage shown live is the earliest unfinished one, and the
//! step numbers are fixed up front from the Dockerfile order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};

use super::stage::StageState;
use super::Builder;
use crate::backend::BaseImage;
use crate::error::{BuildError, Result};
use crate::progress::{Event, Progress};

/// What a stage's thread reports to the driver.
enum Msg {
    Event(usize, Event),
    Done(usize, Box<std::thread::Result<Result<Outcome>>>),
}

/// A built stage and what its builder learnt on the way.
struct Outcome {
    state: StageState,
    consumed: BTreeSet<String>,
    images: HashMap<String, BaseImage>,
    warnings: Vec<String>,
}

/// The progress of one stage's builder: events go to the driver; the stage
/// stops before its next step once the build is cancelled or another stage
/// failed.
struct StageProgress<'s> {
    index: usize,
    tx: Sender<Msg>,
    stop: &'s AtomicBool,
}

impl Progress for StageProgress<'_> {
    fn event(&mut self, event: Event) {
        let _ = self.tx.send(Msg::Event(self.index, event));
    }

    fn cancelled(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Passes the events of the earliest unfinished stage through and holds
/// back those of later stages until it is their turn.
struct Ordered {
    order: Vec<usize>,
    /// Position in `order` of the stage shown live.
    cursor: usize,
    held: HashMap<usize, Vec<Event>>,
    finished: HashSet<usize>,
}

impl Ordered {
    fn new(order: &[usize]) -> Ordered {
        Ordered {
            order: order.to_vec(),
            cursor: 0,
            held: HashMap::new(),
            finished: HashSet::new(),
        }
    }

    fn event(&mut self, progress: &mut dyn Progress, stage: usize, event: Event) {
        if self.order.get(self.cursor) == Some(&stage) {
            progress.event(event);
        } else {
            self.held.entry(stage).or_default().push(event);
        }
    }

    fn finish(&mut self, progress: &mut dyn Progress, stage: usize) {
        self.finished.insert(stage);
        while let Some(c) = self.order.get(self.cursor) {
            if !self.finished.contains(c) {
                break;
            }
            self.cursor += 1;
            if let Some(next) = self.order.get(self.cursor) {
                for e in self.held.remove(next).unwrap_or_default() {
                    progress.event(e);
                }
            }
        }
    }

    /// Everything still held, in Dockerfile order (after a failure).
    fn flush(&mut self, progress: &mut dyn Progress) {
        for i in self.order.iter().skip(self.cursor) {
            for e in self.held.remove(i).unwrap_or_default() {
                progress.event(e);
            }
        }
    }
}

impl Builder<'_> {
    /// Builds the `needed` stages (Dockerfile order) into `self.common.done`. A
    /// stage starts once the stages it reads are built; after a failure no
    /// stage starts, the running ones stop before their next step, and the
    /// error of the earliest failed stage is returned. Each stage's thread
    /// releases the roots it borrowed before it reports back.
    pub(super) fn build_stages(&mut self, needed: &[usize]) -> Result<()> {
        let mut deps = HashMap::new();
        let mut first_step = HashMap::new();
        let mut n = 0;
        for &i in needed {
            deps.insert(i, self.stage_deps(i)?);
            first_step.insert(i, n);
            n += 1 + self.common.stages[i].commands.len();
        }
        let stop = AtomicBool::new(false);
        let (tx, rx) = channel::<Msg>();
        let mut out = Ordered::new(needed);
        let mut failures: Vec<(usize, BuildError)> = Vec::new();
        let mut panicked = None;
        // By stage, to add them in Dockerfile order whatever order the
        // stages finish in.
        let mut warnings = BTreeMap::new();
        std::thread::scope(|s| {
            let mut started = HashSet::new();
            let mut running = 0;
            loop {
                if self.progress.cancelled() {
                    stop.store(true, Ordering::SeqCst);
                }
                if !stop.load(Ordering::SeqCst) {
                    for &i in needed {
                        if started.contains(&i)
                            || !deps[&i].iter().all(|d| self.common.done.contains_key(d))
                        {
                            continue;
                        }
                        started.insert(i);
                        running += 1;
                        // Copied before the spawn: the stage sees the stages
                        // built so far, and its own step numbers.
                        let common = self.common.clone();
                        let step = first_step[&i];
                        let tx = tx.clone();
                        let stop = &stop;
                        s.spawn(move || {
                            let mut progress = StageProgress {
                                index: i,
                                tx: tx.clone(),
                                stop,
                            };
                            let r = catch_unwind(AssertUnwindSafe(|| {
                                let mut b = Builder::with(common, &mut progress, step);
                                let r = b.build_stage(i);
                                b.release_all();
                                r.map(|state| Outcome {
                                    state,
                                    consumed: std::mem::take(&mut b.consumed),
                                    images: std::mem::take(&mut b.common.images),
                                    warnings: std::mem::take(&mut b.warnings),
                                })
                            }));
                            let _ = tx.send(Msg::Done(i, Box::new(r)));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                // The driver holds a sender, so this only ends with a message.
                let Ok(msg) = rx.recv() else { break };
                match msg {
                    Msg::Event(i, e) => out.event(&mut *self.progress, i, e),
                    Msg::Done(i, r) => {
                        running -= 1;
                        out.finish(&mut *self.progress, i);
                        match *r {
                            Ok(Ok(o)) => {
                                self.consumed.extend(o.consumed);
                                self.common.images.extend(o.images);
                                self.common.done.insert(i, o.state);
                                warnings.insert(i, o.warnings);
                            }
                            Ok(Err(e)) => {
                                stop.store(true, Ordering::SeqCst);
                                failures.push((i, e));
                            }
                            Err(p) => {
                                stop.store(true, Ordering::SeqCst);
                                panicked.get_or_insert(p);
                            }
                        }
                    }
                }
            }
        });
        out.flush(&mut *self.progress);
        if let Some(p) = panicked {
            resume_unwind(p);
        }
        // A stage stopped because another failed reports Cancelled: the
        // failure that caused it is the one to tell.
        failures.sort_by_key(|(i, e)| (matches!(e, BuildError::Cancelled), *i));
        if let Some((_, e)) = failures.into_iter().next() {
            return Err(e);
        }
        self.warnings.extend(warnings.into_values().flatten());
        if needed.iter().any(|i| !self.common.done.contains_key(i)) {
            return Err(BuildError::Cancelled);
        }
        Ok(())
    }
}
