//! Masking keys from the operating system's random source, failing closed when it fails.

use wscope_proto::connection::MaskSource;

use crate::error::{Error, Result};

/// How the random source is read (a test puts a failing one in).
pub(super) type Fill = fn(&mut [u8]) -> core::result::Result<(), getrandom::Error>;

/// Set once the random source failed while masking keys were drawn: the session then fails
/// closed ([`Session::check_masks`]) instead of sending frames masked with a predictable key.
#[derive(Clone, Debug, Default)]
pub(crate) struct MaskFailure(std::sync::Arc<std::sync::OnceLock<getrandom::Error>>);

impl MaskFailure {
    /// The failure, if the random source failed.
    pub(crate) fn get(&self) -> Option<getrandom::Error> {
        self.0.get().copied()
    }
}

/// Masking keys from the operating system's random source, fetched 256 keys at a time.
pub(crate) struct OsMasks {
    pool: [u8; 1024],
    at: usize,
    fill: Fill,
    failure: MaskFailure,
}

impl OsMasks {
    /// A key source that reads the OS random source through `fill`, and the flag it sets
    /// when that fails.
    pub(crate) fn boxed(fill: Fill) -> (Box<dyn MaskSource>, MaskFailure) {
        let failure = MaskFailure::default();
        let masks = Self {
            pool: [0; 1024],
            at: 1024,
            fill,
            failure: failure.clone(),
        };
        (Box::new(masks), failure)
    }
}

impl MaskSource for OsMasks {
    fn next_mask(&mut self) -> [u8; 4] {
        if self.at + 4 > self.pool.len() {
            if let Err(e) = (self.fill)(&mut self.pool) {
                // No key an attacker cannot predict: the frame this key is for must never
                // leave. The session sees the flag before the bytes reach the write queue's
                // readers and fails the connection; the all-zero key is never sent.
                let _ = self.failure.0.set(e);
                return [0; 4];
            }
            self.at = 0;
        }
        let k = [
            self.pool[self.at],
            self.pool[self.at + 1],
            self.pool[self.at + 2],
            self.pool[self.at + 3],
        ];
        self.at += 4;
        k
    }
}

/// Fills `buf` from the OS random source; its failure is an error (never a weaker source).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(Error::Random)
}

/// A failing random source fails the connection; no frame leaves with a predictable key.
#[cfg(test)]
mod mask_tests {
    use super::*;
    use crate::message::Message;
    use crate::session::{Session, OWNED_MIN};
    use std::io::IoSlice;
    use wscope_proto::connection::Config;
    use wscope_proto::OpCode;

    fn broken(_: &mut [u8]) -> core::result::Result<(), getrandom::Error> {
        Err(getrandom::Error::UNSUPPORTED)
    }

    fn queued(s: &Session) -> usize {
        let mut sl = [IoSlice::new(&[]); 4];
        let n = s.write_slices(&mut sl);
        sl[..n].iter().map(|x| x.len()).sum()
    }

    #[test]
    fn a_failing_random_source_fails_closed() {
        let mut s = Session::client_with(Config::default(), &[], broken);
        assert!(matches!(
            s.send_message(Message::Text("secret".into())),
            Err(Error::Random(_))
        ));
        assert_eq!(
            queued(&s),
            0,
            "the frame masked with no proper key was dropped"
        );
        let mut big = vec![7u8; OWNED_MIN];
        assert!(matches!(
            s.send_vec(OpCode::BINARY, &mut big),
            Err(Error::Random(_))
        ));
        assert!(matches!(s.close(None, ""), Err(Error::Random(_))));
        assert_eq!(queued(&s), 0);
        assert!(s.should_close());
        assert!(matches!(s.end_error(), Some(Error::Random(_))));
    }

    #[test]
    fn a_working_random_source_masks_with_its_keys() {
        fn ones(b: &mut [u8]) -> core::result::Result<(), getrandom::Error> {
            b.fill(1);
            Ok(())
        }
        let mut s = Session::client_with(Config::default(), &[], ones);
        s.send_message(Message::binary(vec![0, 0])).expect("sent");
        let mut sl = [IoSlice::new(&[]); 4];
        let n = s.write_slices(&mut sl);
        let wire: Vec<u8> = sl[..n].iter().flat_map(|x| x.to_vec()).collect();
        assert_eq!(wire, [0x82, 0x82, 1, 1, 1, 1, 1, 1]);
        assert!(!s.should_close());
    }
}
