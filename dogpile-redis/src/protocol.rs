//! The Redis side of one namespace: the keys of a slot, the notification channel, and
//! the calls of the scripts. The tier, the lease renewer and the notification listener
//! each hold this (or its pool), never the tier itself.

use std::sync::Arc;
use std::time::Duration;

use crate::conn::Pool;
use crate::epoch::{Epoch, EpochCell, Epochs};
use crate::scripts::{self, SlotReply};
use crate::Error;

/// How long Redis keeps a slot nobody publishes, invalidates or removes.
pub(crate) const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// One namespace's calls on Redis, under the settings of one tier. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Protocol {
    pub(crate) pool: Arc<Pool>,
    pub(crate) namespace: Arc<str>,
    pub(crate) lease: Duration,
    pub(crate) max_value: usize,
    /// The epochs of every scope of this tier, as this process knows them.
    pub(crate) epochs: Arc<Epochs>,
}

impl Protocol {
    /// The Redis keys of the slot with this key fingerprint: value hash and lease.
    pub(crate) fn slot_keys(&self, fingerprint: &str) -> [String; 2] {
        let tag = format!("dogpile:{{{}:{fingerprint}}}", self.namespace);
        [format!("{tag}:v"), format!("{tag}:l")]
    }

    /// The notification channel of this namespace (F6).
    pub(crate) fn channel(&self) -> String {
        format!("dogpile:{}:events", self.namespace)
    }

    /// The key of this scope's epochs. Its own hash tag: it is never in a slot's
    /// script, so it may live on another Cluster node than any slot.
    pub(crate) fn epoch_key(&self) -> String {
        epoch_key(&self.namespace)
    }

    /// This scope's epochs as this process knows them.
    pub(crate) fn epoch_cell(&self) -> Arc<EpochCell> {
        self.epochs.cell(&self.namespace)
    }

    /// The epochs a slot's script is to carry: read from Redis first if this process
    /// never has (at connect), so that no claim judges values by epochs it missed.
    pub(crate) fn known_epoch(&self) -> Result<Epoch, Error> {
        let cell = self.epoch_cell();
        if !cell.is_known() {
            read_epoch(&self.pool, &self.epoch_key(), &cell)?;
        }
        Ok(cell.get())
    }

    /// Learns the epochs a reply's value was stored under (a process that missed an
    /// announcement learns it from a value written by one that did not).
    fn learn_from(&self, reply: &SlotReply) {
        self.epoch_cell().learn(reply.epoch);
    }

    pub(crate) fn lookup(&self, fp: &str) -> Result<SlotReply, Error> {
        let [value, lease] = self.slot_keys(fp);
        let epoch = self.known_epoch()?;
        let reply: SlotReply = self.pool.run(|con| {
            scripts::LOOKUP_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(self.max_value)
                .arg(epoch.soft)
                .arg(epoch.hard)
                .invoke(con)
        })?;
        self.learn_from(&reply);
        Ok(reply)
    }

    /// Raises this scope's epochs (`invalidate_all`, or `clear` when `hard`) and tells
    /// every process (F6).
    pub(crate) fn invalidate_all(&self, hard: bool) -> Result<(), Error> {
        let key = self.epoch_key();
        let (soft, hard): (u64, u64) = self.pool.run(|con| {
            scripts::EPOCH_RAISE_SCRIPT
                .key(&key)
                .arg(if hard { "1" } else { "0" })
                .arg(self.channel())
                .invoke(con)
        })?;
        self.epoch_cell().read(Epoch { soft, hard });
        Ok(())
    }

    pub(crate) fn claim(
        &self,
        fp: &str,
        refresh_ahead: Duration,
        token: &Token,
        force: bool,
    ) -> Result<SlotReply, Error> {
        let [value, lease] = self.slot_keys(fp);
        let reply: SlotReply = self.pool.run(|con| {
            scripts::CLAIM_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(self.max_value)
                .arg(whole_millis(refresh_ahead))
                .arg(&token.text)
                .arg(millis(self.lease))
                .arg(if force { "1" } else { "0" })
                .arg(token.epoch.soft)
                .arg(token.epoch.hard)
                .invoke(con)
        })?;
        self.learn_from(&reply);
        Ok(reply)
    }

    /// A claim token carrying the epochs this process knows now: the epochs its value
    /// is stored under if it publishes.
    pub(crate) fn token(&self, base: String) -> Result<Token, Error> {
        Ok(Token::new(base, self.known_epoch()?))
    }

    pub(crate) fn publish(
        &self,
        fp: &str,
        token: &str,
        generation: u64,
        bytes: &[u8],
        lifetime: Duration,
    ) -> Result<bool, Error> {
        let [value, lease] = self.slot_keys(fp);
        let epoch = Token::epoch_of(token);
        let stored: i64 = self.pool.run(|con| {
            scripts::PUBLISH_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(token)
                .arg(generation)
                .arg(bytes)
                .arg(millis(RETENTION))
                .arg(self.channel())
                .arg(fp)
                .arg(epoch.soft)
                .arg(epoch.hard)
                .arg(whole_millis(lifetime))
                .invoke(con)
        })?;
        Ok(stored == 1)
    }

    /// Ends `token`'s lease, counting a failure; with a non-zero `hold`, the key stays
    /// claimed by nobody that long (the back-off).
    pub(crate) fn release(&self, fp: &str, token: &str, hold: Duration) -> Result<bool, Error> {
        let [value, lease] = self.slot_keys(fp);
        let released: i64 = self.pool.run(|con| {
            scripts::RELEASE_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(token)
                .arg(self.channel())
                .arg(fp)
                .arg(whole_millis(hold))
                .arg(millis(RETENTION))
                .invoke(con)
        })?;
        Ok(released == 1)
    }

    /// A batch's script over the slots of `fps`, one script per node (see
    /// [`Pool::groups`]): `common` adds the script's arguments before the slots', then
    /// each slot's keys go with the arguments `each` adds for its position in `fps`. One reply per slot, in the order of `fps`; a node that fails fails
    /// its slots only (F7).
    fn per_node<T: redis::FromRedisValue>(
        &self,
        script: &scripts::Many,
        fps: &[&str],
        common: impl Fn(&mut redis::ScriptInvocation<'_>),
        each: impl Fn(&mut redis::ScriptInvocation<'_>, usize),
    ) -> Vec<Result<T, Error>> {
        let script = match self.pool.is_cluster() {
            true => &script.cluster,
            false => &script.server,
        };
        let slot_keys: Vec<[String; 2]> = fps.iter().map(|fp| self.slot_keys(fp)).collect();
        let value_keys: Vec<String> = slot_keys.iter().map(|[value, _]| value.clone()).collect();
        let mut replies: Vec<Option<Result<T, Error>>> = fps.iter().map(|_| None).collect();
        for group in self.pool.groups(&value_keys) {
            let answered: Result<Vec<T>, Error> = self.pool.run(|con| {
                let mut call = script.prepare_invoke();
                // Routes the script to the group's node; a Cluster refuses a script
                // that declares keys of several hash slots (CROSSSLOT), so the slots'
                // keys travel as arguments.
                call.key(&slot_keys[group[0]][0]);
                common(&mut call);
                for &at in &group {
                    call.arg(&slot_keys[at][0]).arg(&slot_keys[at][1]);
                    each(&mut call, at);
                }
                call.invoke(con)
            });
            match answered {
                Ok(answers) if answers.len() == group.len() => {
                    for (at, answer) in group.into_iter().zip(answers) {
                        replies[at] = Some(Ok(answer));
                    }
                }
                Ok(answers) => {
                    let why = format!("{} answers for {} slots", answers.len(), group.len());
                    for at in group {
                        replies[at] = Some(Err(Error::Protocol(why.clone())));
                    }
                }
                Err(err) => {
                    for at in group {
                        replies[at] = Some(Err(err.copy()));
                    }
                }
            }
        }
        replies
            .into_iter()
            .map(|reply| reply.expect("every slot is in one group"))
            .collect()
    }

    /// CLAIM for each slot of a batch, one script per node; `tokens` by slot.
    pub(crate) fn claim_many(
        &self,
        fps: &[&str],
        refresh_ahead: Duration,
        tokens: &[Token],
        epoch: Epoch,
    ) -> Vec<Result<SlotReply, Error>> {
        let common = |call: &mut redis::ScriptInvocation<'_>| {
            call.arg(self.max_value)
                .arg(whole_millis(refresh_ahead))
                .arg(millis(self.lease))
                .arg(epoch.soft)
                .arg(epoch.hard);
        };
        let each = |call: &mut redis::ScriptInvocation<'_>, at: usize| {
            call.arg(&tokens[at].text);
        };
        let replies = self.per_node(&scripts::CLAIM_MANY_SCRIPT, fps, common, each);
        for reply in replies.iter().flatten() {
            self.learn_from(reply);
        }
        replies
    }

    /// PUBLISH for each `(fingerprint, token, generation, value, lifetime)` of a batch,
    /// one script per node. `Ok(true)` stored, `Ok(false)` rejected (F5).
    pub(crate) fn publish_many(
        &self,
        entries: &[(&str, &str, u64, &[u8], Duration)],
    ) -> Vec<Result<bool, Error>> {
        let fps: Vec<&str> = entries.iter().map(|(fp, ..)| *fp).collect();
        let common = |call: &mut redis::ScriptInvocation<'_>| {
            call.arg(millis(RETENTION)).arg(self.channel());
        };
        let each = |call: &mut redis::ScriptInvocation<'_>, at: usize| {
            let (fp, token, generation, bytes, lifetime) = entries[at];
            let epoch = Token::epoch_of(token);
            call.arg(token)
                .arg(generation)
                .arg(bytes)
                .arg(fp)
                .arg(epoch.soft)
                .arg(epoch.hard)
                .arg(whole_millis(lifetime));
        };
        let replies = self.per_node(&scripts::PUBLISH_MANY_SCRIPT, &fps, common, each);
        replies
            .into_iter()
            .map(|r| r.map(|stored: i64| stored == 1))
            .collect()
    }

    /// RELEASE for each `(fingerprint, token, hold)` of a batch, one script per node.
    pub(crate) fn release_many(
        &self,
        entries: &[(&str, &str, Duration)],
    ) -> Vec<Result<bool, Error>> {
        let fps: Vec<&str> = entries.iter().map(|(fp, ..)| *fp).collect();
        let common = |call: &mut redis::ScriptInvocation<'_>| {
            call.arg(self.channel()).arg(millis(RETENTION));
        };
        let each = |call: &mut redis::ScriptInvocation<'_>, at: usize| {
            let (fp, token, hold) = entries[at];
            call.arg(token).arg(fp).arg(whole_millis(hold));
        };
        let replies = self.per_node(&scripts::RELEASE_MANY_SCRIPT, &fps, common, each);
        replies
            .into_iter()
            .map(|r| r.map(|released: i64| released == 1))
            .collect()
    }

    /// RENEW for each `(fingerprint, token)`, one script per node: the leases of a
    /// batch's keys, due together, renewed together.
    pub(crate) fn renew_many(&self, entries: &[(&str, &str)]) -> Vec<Result<bool, Error>> {
        let fps: Vec<&str> = entries.iter().map(|(fp, _)| *fp).collect();
        let common = |call: &mut redis::ScriptInvocation<'_>| {
            call.arg(millis(self.lease));
        };
        let each = |call: &mut redis::ScriptInvocation<'_>, at: usize| {
            call.arg(entries[at].1);
        };
        let replies = self.per_node(&scripts::RENEW_MANY_SCRIPT, &fps, common, each);
        replies
            .into_iter()
            .map(|r| r.map(|renewed: i64| renewed == 1))
            .collect()
    }

    pub(crate) fn invalidate(&self, fp: &str) -> Result<(), Error> {
        self.change(&scripts::INVALIDATE_SCRIPT, fp)
    }

    pub(crate) fn remove(&self, fp: &str) -> Result<(), Error> {
        self.change(&scripts::REMOVE_SCRIPT, fp)
    }

    /// Runs an invalidate or remove `script` on the slot of `fp`: it fences a lease in
    /// flight (F5) and tells every process (F6).
    fn change(&self, script: &redis::Script, fp: &str) -> Result<(), Error> {
        let [value, lease] = self.slot_keys(fp);
        self.pool.run(|con| {
            script
                .key(&value)
                .key(&lease)
                .arg(millis(RETENTION))
                .arg(self.channel())
                .arg(fp)
                .invoke::<i64>(con)
        })?;
        Ok(())
    }
}

/// The key of the epochs of scope `namespace`.
pub(crate) fn epoch_key(namespace: &str) -> String {
    format!("dogpile:{{{namespace}}}:e")
}

/// Reads a scope's epochs from Redis into `cell` (at connect, and on each
/// resubscription of the notification link).
pub(crate) fn read_epoch(pool: &Pool, key: &str, cell: &EpochCell) -> Result<Epoch, Error> {
    let known = cell.get();
    let (soft, hard): (u64, u64) = pool.run(|con| {
        scripts::EPOCH_READ_SCRIPT
            .key(key)
            .arg(known.soft)
            .arg(known.hard)
            .invoke(con)
    })?;
    cell.read(Epoch { soft, hard });
    Ok(cell.get())
}

/// A claim's owner token, `"{unique}/{soft}.{hard}"`: the epochs known at the claim
/// travel with the lease to the publish.
pub(crate) struct Token {
    pub(crate) text: String,
    pub(crate) epoch: Epoch,
}

impl Token {
    /// A token carrying `epoch`, the epochs this process knows now.
    pub(crate) fn new(base: String, epoch: Epoch) -> Token {
        Token {
            text: format!("{base}/{}.{}", epoch.soft, epoch.hard),
            epoch,
        }
    }

    /// The epochs in a token's text (zero for a token without them).
    fn epoch_of(text: &str) -> Epoch {
        text.rsplit_once('/')
            .and_then(|(_, epochs)| Epoch::parse(&epochs.replacen('.', ":", 1)))
            .unwrap_or_default()
    }
}

/// Whole milliseconds, at least 1 (Redis rejects a zero expiry).
pub(crate) fn millis(d: Duration) -> u64 {
    whole_millis(d).max(1)
}

/// Whole milliseconds, at most 2^53 (what a Lua number holds exactly).
pub(crate) fn whole_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).map_or(1 << 53, |ms| ms.min(1 << 53))
}
