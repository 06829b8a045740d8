//! Sync groups (keepalived's vrrp_sync_group; not in the RFCs): members move
//! together. A member whose Master_Down_Timer fires does not take over alone: it
//! says so (`Output::WantMaster`), and the group becomes master only when every
//! member wants to or is master already, so a member whose peer is still master
//! holds the group back (which is what stops two half-groups from flapping). When a
//! member leaves mastership for its own reasons, the others follow to backup at
//! once (`Input::SyncGroup { to: Backup }`: no priority-0 advert, the peer group is
//! taking over).

use crate::instance::{Instance, State};

/// What a member's outputs ask of its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// Its Master_Down_Timer fired.
    WantMaster,
    /// It left mastership (not because of the group).
    LeftMaster,
}

/// A member as the group sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member<I> {
    pub id: I,
    pub state: State,
    pub wants_master: bool,
}

impl<I> Member<I> {
    pub fn of(id: I, inst: &Instance) -> Member<I> {
        Member {
            id,
            state: inst.state(),
            wants_master: inst.wants_master(),
        }
    }
}

/// The state a member must still be in when its move reaches it.
pub fn from_state(to: State) -> State {
    match to {
        State::Master => State::Backup,
        _ => State::Master,
    }
}

/// The members to move, in order, and where to, after `me` made move `m`.
/// `peers` has one entry per other member name: `None` when no instance of that
/// name runs (a reload is restarting it), which holds a `WantMaster` back.
/// Each move applies only if the member is still in [`from_state`] when it gets
/// there.
pub fn moves<I: Copy>(me: Member<I>, peers: &[Option<Vec<Member<I>>>], m: Move) -> Vec<(I, State)> {
    let present = || peers.iter().flatten().flatten();
    match m {
        Move::WantMaster => {
            let ready = peers.iter().all(Option::is_some)
                && present().all(|p| p.wants_master || p.state == State::Master);
            if !ready {
                return Vec::new();
            }
            std::iter::once(me.id)
                .chain(present().map(|p| p.id))
                .map(|id| (id, State::Master))
                .collect()
        }
        Move::LeftMaster => present().map(|p| (p.id, State::Backup)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u8, state: State, wants_master: bool) -> Member<u8> {
        Member {
            id,
            state,
            wants_master,
        }
    }

    #[test]
    fn master_only_when_every_member_wants_it() {
        let me = m(1, State::Backup, true);
        let waiting = [Some(vec![m(2, State::Backup, false)])];
        assert_eq!(moves(me, &waiting, Move::WantMaster), vec![]);
        let ready = [
            Some(vec![m(2, State::Backup, true)]),
            Some(vec![m(3, State::Master, false)]),
        ];
        assert_eq!(
            moves(me, &ready, Move::WantMaster),
            vec![(1, State::Master), (2, State::Master), (3, State::Master)]
        );
        // A member that is not running (restarted by a reload) holds the group back.
        assert_eq!(moves(me, &[None], Move::WantMaster), vec![]);
    }

    #[test]
    fn one_leaving_takes_the_others_along() {
        let me = m(1, State::Backup, false);
        let peers = [Some(vec![m(2, State::Master, false)]), None];
        assert_eq!(moves(me, &peers, Move::LeftMaster), vec![(2, State::Backup)]);
    }
}
