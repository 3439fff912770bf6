//! Whose a job of the fair bcrypt queue is: the client's address, known network or not.

/// Whose a job is: a client's address (an IPv6 one by its /64, what one subscriber holds), and
/// whether the job checks a login from a network where that login succeeded before (a *known*
/// lane, apart from the address's other jobs). Jobs of one lane wait behind each other; lanes
/// take turns, so one address's flood of logins delays another's login by at most one job per
/// address waiting, not by the whole flood. A lane that had been quiet goes before the busy ones
/// for its first few jobs, and a known lane before those, so a person signing in waits for the
/// jobs running, not for a turn behind every address of a storm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Lane(u128);

/// Bits of a [`Lane`]: the address family above the 64 bits of the address (an IPv4 address, or
/// an IPv6 /64's prefix), and the known flag at the top.
const V4: u128 = 1 << 64;
const V6: u128 = 2 << 64;
const KNOWN: u128 = 1 << 127;

impl Lane {
    /// Work no client asked for (the dummy hash, the command line).
    pub const SERVICE: Lane = Lane(0);

    /// The lane of a client's address, keyed as the rate limits key it
    /// ([`address_key`](crate::auth::ratelimit::address_key): an IPv6 address by its /64).
    pub fn of(ip: std::net::IpAddr) -> Lane {
        match crate::auth::ratelimit::address_key(ip) {
            std::net::IpAddr::V4(v4) => Lane(V4 | u128::from(u32::from(v4))),
            std::net::IpAddr::V6(v6) => Lane(V6 | u128::from(v6) >> 64),
        }
    }

    /// The same address's lane for checking a login from a network where it succeeded before.
    pub fn known(self) -> Lane {
        if self == Lane::SERVICE {
            return self;
        }
        Lane(self.0 | KNOWN)
    }

    pub(super) fn is_known(self) -> bool {
        self.0 & KNOWN != 0
    }

    /// What the lane's credit is kept by: its network (an IPv4 /24, an IPv6 /48,
    /// [`network_key`](crate::auth::ratelimit::network_key)), known or not, so that the many
    /// addresses of one network share one credit and one silence. (With known sign-ins apart, a
    /// storm whose logins had become known left its network's other credit silent, full again
    /// 20 s later for the storm's next login not known: 16 of them went before a person.)
    /// Whose share of the queue a job counts in: its network's ([`network`](Self::network)),
    /// a network's known sign-ins apart from its other jobs, so that a storm from the network
    /// of someone's home does not take their share.
    pub(super) fn group(self) -> Lane {
        Lane(self.network().0 | self.0 & KNOWN)
    }

    pub(super) fn network(self) -> Lane {
        let lane = self.0 & !KNOWN;
        match lane & (V4 | V6) {
            V4 => Lane(lane & !0xff),
            V6 => Lane(lane & !0xffff),
            _ => Lane(lane),
        }
    }
}
