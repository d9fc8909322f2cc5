//! Who is who: the role of an endpoint and the direction of traffic.
//!
//! Rules depend on the *direction* of traffic (client-to-server frames are masked), never on
//! which side is "us", so one implementation serves the client, the server and the observer.

/// The role of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: an endpoint is a client or a server"
)]
pub enum Role {
    /// Opens the connection and masks what it sends.
    Client,
    /// Accepts the connection and never masks.
    Server,
}

impl Role {
    /// The direction of the traffic this role sends.
    pub const fn sends(self) -> Direction {
        match self {
            Self::Client => Direction::ClientToServer,
            Self::Server => Direction::ServerToClient,
        }
    }

    /// The direction of the traffic this role receives.
    pub const fn receives(self) -> Direction {
        self.sends().reverse()
    }

    /// Whether this is the client.
    pub const fn is_client(self) -> bool {
        matches!(self, Self::Client)
    }
}

/// A direction of traffic on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: a byte stream goes client to server or server to client"
)]
pub enum Direction {
    /// From the client (the connection's originator) to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    /// Zeek's `is_orig`: true for traffic from the originator (the client).
    pub const fn is_orig(self) -> bool {
        matches!(self, Self::ClientToServer)
    }

    /// The other direction.
    pub const fn reverse(self) -> Self {
        match self {
            Self::ClientToServer => Self::ServerToClient,
            Self::ServerToClient => Self::ClientToServer,
        }
    }

    /// Index 0 for client-to-server, 1 for server-to-client (Net::Inspect's `$dir`).
    pub const fn index(self) -> usize {
        match self {
            Self::ClientToServer => 0,
            Self::ServerToClient => 1,
        }
    }
}
