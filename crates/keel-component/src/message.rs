//! Messages: a label and up to [`MAX_WORDS`] message registers, as a protected call or its
//! reply carries them. Three ways to fill them:
//!
//! * words, directly ([`Message::with_words`]);
//! * bytes ([`Message::from_bytes`]): MR0 is the byte count, the bytes follow in MR1.. packed
//!   little-endian, eight to a word (at most [`MAX_BYTES`]);
//! * a typed value ([`Message::encode`]): its postcard encoding, packed as bytes.
//!
//! [`Protocol`] pairs a request type with a response type (usually two enums) so that a
//! client calls with [`Channel::request`](crate::Channel::request) and a server answers with
//! [`Protocol::serve`].

use core::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Most message registers in one message. Microkit's limit; below seL4's 120.
pub const MAX_WORDS: usize = 64;
/// Most bytes in one message: every register but the length word.
pub const MAX_BYTES: usize = (MAX_WORDS - 1) * 8;

/// Message labels used by the runtime. Labels 1..=10 in a *reply* are the kernel's
/// `seL4_Error` codes, so the runtime's reply labels start at 0x100.
pub mod label {
    /// Success; a typed request or response.
    pub const OK: u64 = 0;
    /// A log line to the console (bytes).
    pub const LOG: u64 = 1;
    /// Ask the supervisor for a child's record (MR0 = child index).
    pub const STATUS: u64 = 2;
    /// Reply from a component that was restarted while the caller waited: the call was not
    /// completed.
    pub const RESTARTED: u64 = 0x100;
    /// Reply from a component that does not serve protected calls (or not this label).
    pub const UNSUPPORTED: u64 = 0x101;
    /// Reply to a request that could not be decoded.
    pub const BAD_REQUEST: u64 = 0x102;
}

/// Why a message could not be built or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// More than [`MAX_WORDS`] words or [`MAX_BYTES`] bytes.
    TooLong,
    /// The length word does not fit the message, or the output buffer is too small.
    Malformed,
    /// postcard could not encode the value.
    Encode,
    /// postcard could not decode the bytes as the requested type.
    Decode,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageError::TooLong => "message too long",
            MessageError::Malformed => "malformed message",
            MessageError::Encode => "cannot encode value",
            MessageError::Decode => "cannot decode value",
        })
    }
}

/// Why a typed protected call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The request did not fit in a message.
    Encode(MessageError),
    /// The server died while the call waited ([`label::RESTARTED`]): it was restarted and the
    /// call was not completed; calling again reaches the new run.
    ServerDied,
    /// The reply carried this label instead of [`label::OK`]: a kernel error (1..=10), or one
    /// of the runtime's other labels ([`label::BAD_REQUEST`], [`label::UNSUPPORTED`]).
    Label(u64),
    /// The reply was not a valid response.
    Decode(MessageError),
}

impl CallError {
    /// The response a reply carries, or why it carries none.
    pub fn check<T: DeserializeOwned>(reply: Message) -> Result<T, CallError> {
        match reply.label() {
            label::OK => reply.decode().map_err(CallError::Decode),
            label::RESTARTED => Err(CallError::ServerDied),
            other => Err(CallError::Label(other)),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Encode(e) => write!(f, "request: {e}"),
            CallError::ServerDied => f.write_str("the server died (restarted) during the call"),
            CallError::Label(l) => write!(f, "reply label {l:#x}"),
            CallError::Decode(e) => write!(f, "response: {e}"),
        }
    }
}

/// A label and message registers.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    label: u64,
    words: heapless::Vec<u64, MAX_WORDS>,
}

/// The payload of a byte message: MR1.. as little-endian words, whatever the host's byte
/// order, so that the bytes are the same on the host (tests) and in components.
type Payload = [zerocopy::little_endian::U64; MAX_WORDS - 1];

impl Default for Message {
    fn default() -> Self {
        Message::new(label::OK)
    }
}

impl Message {
    /// An empty message with `label` (52 bits are carried; higher bits are dropped).
    pub const fn new(label: u64) -> Self {
        Message {
            label: label & ((1 << 52) - 1),
            words: heapless::Vec::new(),
        }
    }

    /// A message with `label` and `words` as its registers.
    pub fn with_words(label: u64, words: &[u64]) -> Result<Self, MessageError> {
        let mut m = Message::new(label);
        m.words = heapless::Vec::from_slice(words).map_err(|_| MessageError::TooLong)?;
        Ok(m)
    }

    pub const fn label(&self) -> u64 {
        self.label
    }

    pub fn set_label(&mut self, label: u64) {
        self.label = label & ((1 << 52) - 1);
    }

    /// Number of message registers.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The message registers.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Register `i`, or 0 beyond the message's length.
    pub fn word(&self, i: usize) -> u64 {
        self.words().get(i).copied().unwrap_or(0)
    }

    /// Append one register.
    pub fn push(&mut self, word: u64) -> Result<(), MessageError> {
        self.words.push(word).map_err(|_| MessageError::TooLong)
    }

    /// A message carrying `bytes` (MR0 = length, then the bytes little-endian).
    pub fn from_bytes(label: u64, bytes: &[u8]) -> Result<Self, MessageError> {
        use zerocopy::{FromZeros, IntoBytes};
        let mut payload = Payload::new_zeroed();
        payload
            .as_mut_bytes()
            .get_mut(..bytes.len())
            .ok_or(MessageError::TooLong)?
            .copy_from_slice(bytes);
        let mut m = Message::new(label);
        m.push(bytes.len() as u64)?;
        for w in payload.iter().take(bytes.len().div_ceil(8)) {
            m.push(w.get())?;
        }
        Ok(m)
    }

    /// The byte count of a byte message, if its length word fits the message.
    pub fn byte_len(&self) -> Option<usize> {
        let n = usize::try_from(self.word(0)).ok()?;
        (n <= MAX_BYTES && n.div_ceil(8) < self.len()).then_some(n)
    }

    /// Copy the bytes of a byte message into `out`; returns the filled part.
    pub fn read_bytes<'a>(&self, out: &'a mut [u8]) -> Result<&'a [u8], MessageError> {
        use zerocopy::{FromZeros, IntoBytes};
        let n = self.byte_len().ok_or(MessageError::Malformed)?;
        let mut payload = Payload::new_zeroed();
        for (p, &w) in payload.iter_mut().zip(self.words.iter().skip(1)) {
            *p = w.into();
        }
        let bytes = payload.as_bytes().get(..n).ok_or(MessageError::Malformed)?;
        let out = out.get_mut(..n).ok_or(MessageError::Malformed)?;
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A message carrying the postcard encoding of `value`.
    pub fn encode<T: Serialize + ?Sized>(label: u64, value: &T) -> Result<Self, MessageError> {
        let mut buf = [0u8; MAX_BYTES];
        let used = postcard::to_slice(value, &mut buf).map_err(|e| match e {
            postcard::Error::SerializeBufferFull => MessageError::TooLong,
            _ => MessageError::Encode,
        })?;
        Message::from_bytes(label, used)
    }

    /// Decode the postcard-encoded value this message carries.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, MessageError> {
        let mut buf = [0u8; MAX_BYTES];
        let bytes = self.read_bytes(&mut buf)?;
        postcard::from_bytes(bytes).map_err(|_| MessageError::Decode)
    }

    /// Decode a value that borrows from the message's bytes (`&str`, `&[u8]`), which are
    /// copied to `scratch` first.
    pub fn decode_in<'a, T: Deserialize<'a>>(
        &self,
        scratch: &'a mut [u8; MAX_BYTES],
    ) -> Result<T, MessageError> {
        let bytes = self.read_bytes(scratch)?;
        postcard::from_bytes(bytes).map_err(|_| MessageError::Decode)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("label", &self.label)
            .field("words", &self.words())
            .finish()
    }
}

/// A request/response protocol for protected calls: `Request` goes to the server,
/// `Response` comes back, both postcard-encoded with label [`label::OK`].
///
/// ```ignore
/// #[derive(Serialize, Deserialize)] enum Req { Add(u32, u32) }
/// #[derive(Serialize, Deserialize)] enum Resp { Sum(u32) }
/// struct Calc;
/// impl Protocol for Calc { type Request = Req; type Response = Resp; }
/// // system.cdl: channel protocol="calc::Calc" { end client id=0 calls=#true; end server id=0 }
/// // client:  system::channels::SERVER.call(&Req::Add(1, 2))   // SERVER: Client<Calc>
/// // server:  impl Serve<Calc> for Server {
/// //              fn serve(&mut self, _: Channel, Req::Add(a, b): Req) -> Resp { Resp::Sum(a + b) } }
/// ```
pub trait Protocol {
    type Request: Serialize + DeserializeOwned;
    type Response: Serialize + DeserializeOwned;

    /// Server side: decode `msg` as a request, answer it with `f`. A message that is not a
    /// valid request gets [`label::BAD_REQUEST`]; a response too long for a message gets
    /// [`label::UNSUPPORTED`].
    fn serve(msg: &Message, f: impl FnOnce(Self::Request) -> Self::Response) -> Message
    where
        Self: Sized,
    {
        if msg.label() != label::OK {
            return Message::new(label::BAD_REQUEST);
        }
        match msg.decode::<Self::Request>() {
            Ok(request) => Message::encode(label::OK, &f(request))
                .unwrap_or_else(|_| Message::new(label::UNSUPPORTED)),
            Err(_) => Message::new(label::BAD_REQUEST),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[test]
    fn bytes_round_trip_at_every_length() {
        let data: std::vec::Vec<u8> = (0..MAX_BYTES as u32).map(|i| (i * 7 + 1) as u8).collect();
        for n in 0..=MAX_BYTES {
            let m = Message::from_bytes(label::LOG, &data[..n]).unwrap();
            assert_eq!(m.len(), 1 + n.div_ceil(8));
            assert_eq!(m.byte_len(), Some(n));
            let mut out = [0u8; MAX_BYTES];
            assert_eq!(m.read_bytes(&mut out).unwrap(), &data[..n]);
        }
        assert_eq!(
            Message::from_bytes(0, &[0; MAX_BYTES + 1]).unwrap_err(),
            MessageError::TooLong
        );
    }

    #[test]
    fn bytes_are_packed_little_endian() {
        let m = Message::from_bytes(7, b"hello, world").unwrap();
        assert_eq!(m.label(), 7);
        assert_eq!(
            m.words(),
            &[
                12,
                u64::from_le_bytes(*b"hello, w"),
                u64::from_le_bytes(*b"orld\0\0\0\0")
            ]
        );
    }

    #[test]
    fn malformed_lengths_are_rejected() {
        let m = Message::with_words(0, &[17, 0, 0]).unwrap();
        assert_eq!(m.byte_len(), None);
        assert_eq!(
            m.read_bytes(&mut [0; 64]).unwrap_err(),
            MessageError::Malformed
        );
        assert_eq!(Message::new(0).byte_len(), None);
        let m = Message::from_bytes(0, b"abc").unwrap();
        assert_eq!(
            m.read_bytes(&mut [0; 2]).unwrap_err(),
            MessageError::Malformed
        );
        assert_eq!(
            Message::with_words(0, &[u64::MAX]).unwrap().byte_len(),
            None
        );
    }

    #[test]
    fn words_and_labels() {
        let mut m = Message::with_words(u64::MAX, &[1, 2]).unwrap();
        assert_eq!(m.label(), (1 << 52) - 1);
        assert_eq!(m.word(1), 2);
        assert_eq!(m.word(5), 0);
        for _ in 2..MAX_WORDS {
            m.push(9).unwrap();
        }
        assert_eq!(m.push(9), Err(MessageError::TooLong));
        assert!(Message::with_words(0, &[0; MAX_WORDS + 1]).is_err());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Req {
        Ping(u32),
        Add { a: i64, b: i64 },
        Name([u8; 4]),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Resp {
        Pong(u32),
        Sum(i64),
    }

    struct Calc;
    impl Protocol for Calc {
        type Request = Req;
        type Response = Resp;
    }

    #[test]
    fn typed_values_round_trip() {
        for req in [
            Req::Ping(3),
            Req::Add { a: -5, b: 1 << 40 },
            Req::Name(*b"keel"),
        ] {
            let m = Message::encode(label::OK, &req).unwrap();
            assert_eq!(m.decode::<Req>().unwrap(), req);
        }
        let m = Message::encode(label::OK, "borrowed").unwrap();
        let mut scratch = [0; MAX_BYTES];
        assert_eq!(m.decode_in::<&str>(&mut scratch).unwrap(), "borrowed");
        assert_eq!(
            Message::encode(0, &[7u8; MAX_BYTES][..]).unwrap_err(),
            MessageError::TooLong
        );
    }

    #[test]
    fn call_errors_name_a_dead_server() {
        assert_eq!(
            CallError::check::<Resp>(Message::new(label::RESTARTED)),
            Err(CallError::ServerDied)
        );
        assert_eq!(
            CallError::check::<Resp>(Message::new(label::BAD_REQUEST)),
            Err(CallError::Label(label::BAD_REQUEST))
        );
        assert_eq!(
            CallError::check::<Resp>(Message::encode(label::OK, &Resp::Sum(3)).unwrap()),
            Ok(Resp::Sum(3))
        );
        assert!(matches!(
            CallError::check::<Resp>(Message::from_bytes(label::OK, &[0xff]).unwrap()),
            Err(CallError::Decode(_))
        ));
    }

    #[test]
    fn serve_answers_requests_and_rejects_garbage() {
        let reply = Calc::serve(
            &Message::encode(0, &Req::Add { a: 2, b: 3 }).unwrap(),
            |r| match r {
                Req::Add { a, b } => Resp::Sum(a + b),
                Req::Ping(n) => Resp::Pong(n),
                Req::Name(_) => Resp::Pong(0),
            },
        );
        assert_eq!(reply.label(), label::OK);
        assert_eq!(reply.decode::<Resp>().unwrap(), Resp::Sum(5));

        let garbage = Message::from_bytes(0, &[0xff, 0xff]).unwrap();
        assert_eq!(
            Calc::serve(&garbage, |_| Resp::Pong(0)).label(),
            label::BAD_REQUEST
        );
        let wrong_label = Message::encode(label::LOG, &Req::Ping(1)).unwrap();
        assert_eq!(
            Calc::serve(&wrong_label, |_| Resp::Pong(0)).label(),
            label::BAD_REQUEST
        );
    }
}
