//! The engine's protocol timers: every instance's deadlines, earliest first.
//!
//! Kept lazily. A backup restarts its Master_Down_Timer on every advert, always
//! later than before: that only moves the deadline in its instance's
//! [`SlotTimers`], and the timer's entry in the queue stays where it was, at or
//! before the deadline. When such an entry comes first it moves to the deadline
//! ([`Timers::due`]), so the queue's first entry, which the engine sleeps until, is
//! a live deadline, and a timer fires at its deadline as if every restart had moved
//! its entry. A timer restarted earlier gets a new entry, and the old one is
//! dropped when it comes first; so is a stopped timer's. A B-tree remove and
//! insert per advert were ~300 instructions of a backup's ~4,300 (issue 19).
//!
//! An Adver_Timer may fire a little early ([`early_window`]) when the engine is
//! awake anyway: 255 masters' timers, staggered, woke the engine once per advert,
//! and a wake (the runtime's poll of every source, the timerfd, the send and the
//! gratuitous ARP syscalls) cost more than the advert. No other timer fires early.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::vrrp::Timer;

/// A timer in the queue: when, which instance, which timer.
pub type Entry = (Instant, u64, Timer);

const COUNT: usize = 5;

fn index(timer: Timer) -> usize {
    match timer {
        Timer::MasterDown => 0,
        Timer::Advert => 1,
        Timer::Garp => 2,
        Timer::PreemptDelay => 3,
        Timer::StartupHold => 4,
    }
}

/// The most an Adver_Timer fires before its deadline, to go out in the same wake
/// as an advert due now: min(1 ms, interval / 50). RFC 5798 §6.4.3 (and RFC 3768
/// §6.4.3): the master sends an ADVERTISEMENT when the Adver_Timer fires and resets
/// it to Advertisement_Interval; a backup declares the master down only after
/// Master_Down_Interval = 3 x Master_Adver_Interval + Skew_Time (§6.1), so an
/// advert up to 2 % of an interval early changes nothing for it. The rate does not
/// change: the engine restarts an early timer from its deadline, not from the wake
/// (`early_restart`, `Engine::fire_due_timers`), so the n-th advert is never due before n intervals
/// have passed. Every other timer (Master_Down_Timer above all, whose early firing
/// would be a false takeover) fires at its deadline, never before: zero.
pub fn early_window(timer: Timer, interval: Duration) -> Duration {
    match timer {
        Timer::Advert => (interval / 50).min(EARLY_MAX),
        Timer::MasterDown | Timer::Garp | Timer::PreemptDelay | Timer::StartupHold => Duration::ZERO,
    }
}

/// What an Adver_Timer due at `at` and fired in a wake at `now` restarts from, if
/// not from the time its advert is carried out (as every other timer): its
/// deadline when it fired early ([`early_window`]), so that early adverts do not add
/// up to a higher rate (RFC 5798 §6.4.3: "Reset the Adver_Timer to
/// Advertisement_Interval"). A late one restarts as before: a stalled engine sends
/// one advert, not a burst to catch up, and instances that were late together do not
/// fall in step (restarted from one instant, they would wake together ever after).
pub fn early_restart(at: Instant, now: Instant) -> Option<Instant> {
    (at > now).then_some(at)
}

/// [`early_window`]'s bound: at 100 ms, 255 staggered masters share ~2.5 adverts a
/// wake.
const EARLY_MAX: Duration = Duration::from_millis(1);

/// One instance's timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct SlotTimers {
    /// When each timer fires, if armed.
    deadlines: [Option<Instant>; COUNT],
    /// The time of each timer's entry in the queue (at or before its deadline);
    /// an entry at another time is left over.
    queued: [Option<Instant>; COUNT],
    /// How early the Adver_Timer may fire ([`early_window`]; the only timer that may).
    advert_early: Duration,
}

impl SlotTimers {
    #[cfg(test)]
    fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[index(timer)]
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[index(timer)] = None;
    }

    /// The timer of `entry` fires now, if it is still due then (not stopped or
    /// restarted by what was handled since [`Timers::due`] returned it).
    pub fn fire(&mut self, entry: &Entry) -> bool {
        let (at, _, timer) = *entry;
        let i = index(timer);
        let due = self.deadlines[i] == Some(at);
        if due {
            self.deadlines[i] = None;
        }
        due
    }
}

/// Where the queue finds an instance's timers (gone: its entries are dropped).
pub trait Slots {
    fn timers_of(&mut self, id: u64) -> Option<&mut SlotTimers>;
}

/// Entries moved to their deadlines one by one at most this many times in one
/// [`Timers::due`]; past that, the whole queue is put right at once (a backup
/// wakes ~3 times a second to find every one of its Master_Down_Timers moved).
const MOVES_BEFORE_REBUILD: usize = 16;

#[derive(Default)]
pub struct Timers {
    queue: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// Arms `timer` of instance `id` (whose timers are `slot`) for `at`; it may fire
    /// up to `early` before (an Adver_Timer's [`early_window`]; zero for the others).
    pub fn start(&mut self, slot: &mut SlotTimers, id: u64, timer: Timer, at: Instant, early: Duration) {
        let i = index(timer);
        slot.deadlines[i] = Some(at);
        if timer == Timer::Advert {
            slot.advert_early = early;
        } else {
            debug_assert!(early.is_zero(), "only the Adver_Timer fires early");
        }
        // An entry at or before the deadline stays.
        if slot.queued[i].is_none_or(|q| q > at) {
            slot.queued[i] = Some(at);
            self.queue.push(Reverse((at, id, timer)));
        }
    }

    /// At or before the next deadline: the time to sleep until.
    pub fn next(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the timers due at `now` out of the queue into `due`, earliest first,
    /// and leaves the first entry a live deadline: entries of timers restarted
    /// later move to their deadlines, left-over ones go. An Adver_Timer is due up to
    /// its [`early_window`] before its deadline (the entry keeps the deadline).
    pub fn due(&mut self, now: Instant, slots: &mut impl Slots, due: &mut Vec<Entry>) {
        let mut moves = 0;
        loop {
            let Some(mut first) = self.queue.peek_mut() else {
                break;
            };
            let Reverse((at, id, timer)) = *first;
            let i = index(timer);
            let Some(slot) = slots.timers_of(id).filter(|s| s.queued[i] == Some(at)) else {
                PeekMut::pop(first);
                continue;
            };
            match slot.deadlines[i] {
                None => {
                    slot.queued[i] = None;
                    PeekMut::pop(first);
                }
                // Restarted later: the entry moves to its deadline.
                Some(deadline) if deadline != at && moves == MOVES_BEFORE_REBUILD => {
                    drop(first);
                    self.rebuild(slots);
                }
                Some(deadline) if deadline != at => {
                    moves += 1;
                    slot.queued[i] = Some(deadline);
                    // It sinks to its place.
                    *first = Reverse((deadline, id, timer));
                }
                Some(_) if at <= now || (timer == Timer::Advert && at <= now + slot.advert_early) => {
                    slot.queued[i] = None;
                    PeekMut::pop(first);
                    due.push((at, id, timer));
                }
                Some(_) => break,
            }
        }
    }

    /// Every entry at its deadline, left-over ones dropped, in one pass (O(n)).
    fn rebuild(&mut self, slots: &mut impl Slots) {
        let mut entries = std::mem::take(&mut self.queue).into_vec();
        entries.retain_mut(|Reverse((at, id, timer))| {
            let i = index(*timer);
            let Some(slot) = slots.timers_of(*id).filter(|s| s.queued[i] == Some(*at)) else {
                return false;
            };
            slot.queued[i] = slot.deadlines[i];
            match slot.deadlines[i] {
                Some(deadline) => {
                    *at = deadline;
                    true
                }
                None => false,
            }
        });
        self.queue = BinaryHeap::from(entries);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    impl Slots for HashMap<u64, SlotTimers> {
        fn timers_of(&mut self, id: u64) -> Option<&mut SlotTimers> {
            self.get_mut(&id)
        }
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    /// Starts `timer` of `id` for `at` as the engine does (an Adver_Timer of 100 ms).
    fn start(t: &mut Timers, slots: &mut HashMap<u64, SlotTimers>, id: u64, timer: Timer, at: Instant) {
        let slot = slots.entry(id).or_default();
        t.start(
            slot,
            id,
            timer,
            at,
            early_window(timer, Duration::from_millis(100)),
        );
    }

    /// What fires at `now`, as the engine fires it.
    fn fire(t: &mut Timers, slots: &mut HashMap<u64, SlotTimers>, now: Instant) -> Vec<Entry> {
        let mut due = Vec::new();
        t.due(now, slots, &mut due);
        due.retain(|e| slots.get_mut(&e.1).is_some_and(|s| s.fire(e)));
        due
    }

    #[test]
    fn restarted_later_fires_at_the_last_deadline_only() {
        let t0 = Instant::now();
        let (mut t, mut slots) = (Timers::default(), HashMap::new());
        for n in 0..10 {
            // An advert every 100 ms restarts a 360 ms Master_Down_Timer.
            start(&mut t, &mut slots, 1, Timer::MasterDown, ms(t0, 100 * n + 360));
        }
        assert_eq!(t.len(), 1, "one entry however often it is restarted");
        assert!(fire(&mut t, &mut slots, ms(t0, 360)).is_empty());
        // Woken at the stale entry: the next wake is the real deadline.
        assert_eq!(t.next(), Some(ms(t0, 1260)));
        assert!(fire(&mut t, &mut slots, ms(t0, 1259)).is_empty());
        let fired = fire(&mut t, &mut slots, ms(t0, 1260));
        assert_eq!(fired, vec![(ms(t0, 1260), 1, Timer::MasterDown)]);
        assert_eq!(t.next(), None);
        assert!(slots[&1].deadline(Timer::MasterDown).is_none());
    }

    #[test]
    fn restarted_earlier_fires_earlier_and_once() {
        let t0 = Instant::now();
        let (mut t, mut slots) = (Timers::default(), HashMap::new());
        start(&mut t, &mut slots, 1, Timer::MasterDown, ms(t0, 360));
        // A priority-0 advert: Skew_Time.
        start(&mut t, &mut slots, 1, Timer::MasterDown, ms(t0, 60));
        assert_eq!(t.next(), Some(ms(t0, 60)));
        assert_eq!(fire(&mut t, &mut slots, ms(t0, 60)).len(), 1);
        assert!(
            fire(&mut t, &mut slots, ms(t0, 400)).is_empty(),
            "the old entry is left over"
        );
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn stopped_or_gone_never_fires() {
        let t0 = Instant::now();
        let (mut t, mut slots) = (Timers::default(), HashMap::new());
        start(&mut t, &mut slots, 1, Timer::MasterDown, ms(t0, 10));
        start(&mut t, &mut slots, 2, Timer::Advert, ms(t0, 20));
        slots.get_mut(&1).unwrap().stop(Timer::MasterDown);
        slots.remove(&2);
        assert!(fire(&mut t, &mut slots, ms(t0, 100)).is_empty());
        assert_eq!(t.len(), 0);
        // Stopped, then started later than its old entry: fires at the new time.
        start(&mut t, &mut slots, 1, Timer::MasterDown, ms(t0, 200));
        slots.get_mut(&1).unwrap().stop(Timer::MasterDown);
        start(&mut t, &mut slots, 1, Timer::MasterDown, ms(t0, 300));
        assert!(fire(&mut t, &mut slots, ms(t0, 299)).is_empty());
        assert_eq!(fire(&mut t, &mut slots, ms(t0, 300)).len(), 1);
    }

    #[test]
    fn due_timers_fire_in_deadline_order() {
        let t0 = Instant::now();
        let (mut t, mut slots) = (Timers::default(), HashMap::new());
        // Many instances restarted later (past the one-by-one moves), and masters'
        // Adver_Timers between them.
        for id in 0..100u64 {
            start(&mut t, &mut slots, id, Timer::MasterDown, ms(t0, 50 + id));
            start(&mut t, &mut slots, id, Timer::MasterDown, ms(t0, 500 + 2 * id));
        }
        for id in 100..150u64 {
            start(
                &mut t,
                &mut slots,
                id,
                Timer::Advert,
                ms(t0, 300 + 5 * (id - 100)),
            );
        }
        let fired = fire(&mut t, &mut slots, ms(t0, 1000));
        assert_eq!(fired.len(), 150);
        assert!(fired.windows(2).all(|w| w[0] < w[1]), "in order: {fired:?}");
        for (at, id, timer) in &fired {
            let want = match timer {
                Timer::MasterDown => ms(t0, 500 + 2 * id),
                _ => ms(t0, 300 + 5 * (id - 100)),
            };
            assert_eq!(*at, want);
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn only_the_adver_timer_may_fire_early() {
        let ms_ = Duration::from_millis;
        assert_eq!(early_window(Timer::Advert, ms_(100)), ms_(1));
        assert_eq!(early_window(Timer::Advert, ms_(1000)), ms_(1));
        assert_eq!(early_window(Timer::Advert, ms_(10)), Duration::from_micros(200));
        for timer in [
            Timer::MasterDown,
            Timer::Garp,
            Timer::PreemptDelay,
            Timer::StartupHold,
        ] {
            assert_eq!(early_window(timer, ms_(100)), Duration::ZERO, "{timer:?}");
        }
        let t0 = Instant::now();
        let (mut t, mut slots) = (Timers::default(), HashMap::new());
        start(&mut t, &mut slots, 1, Timer::Advert, ms(t0, 100));
        start(&mut t, &mut slots, 2, Timer::MasterDown, ms(t0, 101));
        start(&mut t, &mut slots, 3, Timer::Garp, ms(t0, 102));
        // More than the window before its deadline: not yet.
        assert!(fire(&mut t, &mut slots, ms(t0, 98)).is_empty());
        // Within it: fires, with its deadline.
        assert_eq!(
            fire(&mut t, &mut slots, ms(t0, 99)),
            vec![(ms(t0, 100), 1, Timer::Advert)]
        );
        // A Master_Down_Timer 1 ms away, a Garp timer 2 ms: neither before its time.
        assert!(fire(&mut t, &mut slots, ms(t0, 100)).is_empty());
        assert_eq!(
            fire(&mut t, &mut slots, ms(t0, 101)),
            vec![(ms(t0, 101), 2, Timer::MasterDown)]
        );
        assert!(fire(&mut t, &mut slots, ms(t0, 101) + Duration::from_micros(999)).is_empty());
        assert_eq!(fire(&mut t, &mut slots, ms(t0, 102)).len(), 1);
    }

    #[test]
    fn early_adverts_share_wakes_and_keep_the_rate() {
        // 255 masters at 100 ms, staggered over the interval (~0.39 ms apart); the
        // engine sleeps until the first entry, fires what is due and restarts each
        // Adver_Timer fired from `early_restart` or else the wake, as
        // Engine::fire_due_timers does. Each wake lands 0-50 µs after the deadline
        // it slept until (timer slack).
        let interval = Duration::from_millis(100);
        let t0 = Instant::now();
        let (mut t, mut slots) = (Timers::default(), HashMap::new());
        let first = |id: u64| t0 + interval * id as u32 / 255;
        for id in 0..255u64 {
            start(&mut t, &mut slots, id, Timer::Advert, first(id));
        }
        let mut sent: HashMap<u64, Vec<Instant>> = HashMap::new();
        let (mut wakes, end) = (0usize, t0 + interval * 100);
        while let Some(next) = t.next() {
            let now = next + Duration::from_micros(wakes as u64 % 51);
            if now >= end {
                break;
            }
            wakes += 1;
            for (at, id, timer) in fire(&mut t, &mut slots, now) {
                assert_eq!(timer, Timer::Advert);
                assert!(now + Duration::from_millis(1) >= at, "at most 1 ms early");
                sent.entry(id).or_default().push(now);
                start(
                    &mut t,
                    &mut slots,
                    id,
                    timer,
                    early_restart(at, now).unwrap_or(now) + interval,
                );
            }
        }
        let adverts: usize = sent.values().map(Vec::len).sum();
        assert!(
            wakes * 2 < adverts,
            "{wakes} wakes for {adverts} adverts: ~2.5 adverts a wake"
        );
        for (id, times) in &sent {
            // The rate: the n-th advert no earlier than n intervals after the first
            // deadline, less the window; none lost over 100 intervals.
            for (n, at) in times.iter().enumerate() {
                assert!(*at + Duration::from_millis(1) >= first(*id) + interval * n as u32);
            }
            assert!(
                (99..=100).contains(&times.len()),
                "instance {id}: {}",
                times.len()
            );
            // No gap between adverts longer than an interval, the window and the
            // wake's lateness (Master_Down_Interval is 3 intervals and the skew).
            for w in times.windows(2) {
                assert!(
                    w[1] - w[0] <= interval + Duration::from_micros(1051),
                    "{:?}",
                    w[1] - w[0]
                );
            }
        }
    }

    #[test]
    fn only_an_early_advert_restarts_from_its_deadline() {
        // A stalled engine (1 s late) sends one advert, not ten to catch up.
        let t0 = Instant::now();
        assert_eq!(early_restart(ms(t0, 100), ms(t0, 1100)), None);
        assert_eq!(early_restart(ms(t0, 100), ms(t0, 100)), None);
        assert_eq!(early_restart(ms(t0, 100), ms(t0, 99)), Some(ms(t0, 100)));
    }

    #[test]
    fn the_first_entry_is_a_live_deadline_after_due() {
        let t0 = Instant::now();
        let (mut t, mut slots) = (Timers::default(), HashMap::new());
        for id in 0..255u64 {
            start(&mut t, &mut slots, id, Timer::MasterDown, ms(t0, 360 + id));
        }
        for id in 0..255u64 {
            start(&mut t, &mut slots, id, Timer::MasterDown, ms(t0, 460 + id));
        }
        // Woken at the first stale entry: nothing due, and the engine sleeps until
        // the earliest real deadline, not the next stale entry.
        assert!(fire(&mut t, &mut slots, ms(t0, 360)).is_empty());
        assert_eq!(t.next(), Some(ms(t0, 460)));
        assert_eq!(t.len(), 255);
    }
}
