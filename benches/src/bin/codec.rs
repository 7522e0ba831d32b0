//! The codec benchmark: encoding and decoding one event enum three ways, in
//! the same run — the derive's layout (`#[derive(PersistentEvent)]`:
//! postcard, variant by name), serde_json (what a hand-written dactor 0.2.0
//! actor often reaches for), and a hand-written byte layout (a tag byte and
//! the fields, as dactor 0.2.0's docs sketch it) — per event, and bytes per
//! event.
//!
//! ```sh
//! cargo run --release -p dactor-persist-benches --bin codec -- --runs 5
//! cargo run -p dactor-persist-benches --bin codec -- --quick   # small, checks it runs
//! ```

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use dactor_persist::PersistentEvent;
use dactor_persist_benches::stats::{Table, median};
use serde::{Deserialize, Serialize};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// A bank account's events: a short string, numbers, an optional note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, PersistentEvent)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64, memo: Option<String> },
    Withdrawn { amount: u64 },
}

/// The mix the harness encodes: 10% opened, 60% deposits (half with a
/// memo), 30% withdrawals.
fn events(n: usize) -> Vec<AccountEvent> {
    (0..n)
        .map(|i| match i % 10 {
            0 => AccountEvent::Opened {
                owner: format!("owner-{i}"),
            },
            1..=6 => AccountEvent::Deposited {
                amount: (i as u64) * 37 % 100_000,
                memo: (i % 2 == 0).then(|| format!("invoice {i}")),
            },
            _ => AccountEvent::Withdrawn {
                amount: (i as u64) * 13 % 50_000,
            },
        })
        .collect()
}

/// The hand-written layout: a tag byte, then each field (strings as a
/// little-endian u32 length and the bytes, numbers as 8 bytes, an option
/// as a 0/1 byte and the value).
mod by_hand {
    use super::AccountEvent;

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    pub fn encode(event: &AccountEvent) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        match event {
            AccountEvent::Opened { owner } => {
                out.push(0);
                put_str(&mut out, owner);
            }
            AccountEvent::Deposited { amount, memo } => {
                out.push(1);
                out.extend_from_slice(&amount.to_le_bytes());
                match memo {
                    Some(m) => {
                        out.push(1);
                        put_str(&mut out, m);
                    }
                    None => out.push(0),
                }
            }
            AccountEvent::Withdrawn { amount } => {
                out.push(2);
                out.extend_from_slice(&amount.to_le_bytes());
            }
        }
        out
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Some(head)
        }
        fn u8(&mut self) -> Option<u8> {
            self.take(1).map(|b| b[0])
        }
        fn u64(&mut self) -> Option<u64> {
            self.take(8)?.try_into().ok().map(u64::from_le_bytes)
        }
        fn string(&mut self) -> Option<String> {
            let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
            String::from_utf8(self.take(len)?.to_vec()).ok()
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<AccountEvent> {
        let mut r = Reader(bytes);
        let event = match r.u8()? {
            0 => AccountEvent::Opened { owner: r.string()? },
            1 => {
                let amount = r.u64()?;
                let memo = match r.u8()? {
                    0 => None,
                    1 => Some(r.string()?),
                    _ => return None,
                };
                AccountEvent::Deposited { amount, memo }
            }
            2 => AccountEvent::Withdrawn { amount: r.u64()? },
            _ => return None,
        };
        r.0.is_empty().then_some(event)
    }
}

/// One codec's encode and decode over `events`: (ns per encode, ns per
/// decode, bytes per event), checking every round trip.
fn measure(
    events: &[AccountEvent],
    encode: impl Fn(&AccountEvent) -> Result<Vec<u8>>,
    decode: impl Fn(&[u8]) -> Result<AccountEvent>,
) -> Result<(f64, f64, f64)> {
    let started = Instant::now();
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(|e| encode(black_box(e)))
        .collect::<Result<_>>()?;
    let encode_ns = started.elapsed().as_nanos() as f64 / events.len() as f64;
    let started = Instant::now();
    let decoded: Vec<AccountEvent> = encoded
        .iter()
        .map(|b| decode(black_box(b)))
        .collect::<Result<_>>()?;
    let decode_ns = started.elapsed().as_nanos() as f64 / events.len() as f64;
    if decoded != events {
        return Err("a codec did not round-trip".into());
    }
    let bytes = encoded.iter().map(Vec::len).sum::<usize>() as f64 / events.len() as f64;
    Ok((encode_ns, decode_ns, bytes))
}

fn main() -> Result<()> {
    let mut runs = 5usize;
    let mut n = 1_000_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--quick" => {
                runs = 1;
                n = 10_000;
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let runs = runs.max(1);
    let events = events(n);
    type Codec = (
        &'static str,
        Box<dyn Fn(&AccountEvent) -> Result<Vec<u8>>>,
        Box<dyn Fn(&[u8]) -> Result<AccountEvent>>,
    );
    let codecs: Vec<Codec> = vec![
        (
            "#[derive(PersistentEvent)] (postcard, variant by name)",
            Box::new(|e| Ok(e.encode()?)),
            Box::new(|b| Ok(AccountEvent::decode(b)?)),
        ),
        (
            "serde_json",
            Box::new(|e| Ok(serde_json::to_vec(e)?)),
            Box::new(|b| Ok(serde_json::from_slice(b)?)),
        ),
        (
            "hand-written bytes (dactor 0.2.0 style)",
            Box::new(|e| Ok(by_hand::encode(e))),
            Box::new(|b| {
                by_hand::decode(b).ok_or_else(|| "a hand-written event did not decode".into())
            }),
        ),
    ];
    // Each run measures every codec in turn, so that all see the machine
    // in the same state.
    let mut results: Vec<(Vec<f64>, Vec<f64>, f64)> = vec![(Vec::new(), Vec::new(), 0.0); 3];
    for _ in 0..runs {
        for (k, (_, encode, decode)) in codecs.iter().enumerate() {
            let (e, d, bytes) = measure(&events, encode, decode)?;
            results[k].0.push(e);
            results[k].1.push(d);
            results[k].2 = bytes;
        }
    }
    let base = (median(results[0].0.clone()), median(results[0].1.clone()));
    let mut table = Table::default();
    for (k, (name, _, _)) in codecs.iter().enumerate() {
        let (encode, decode, bytes) = (
            median(results[k].0.clone()),
            median(results[k].1.clone()),
            results[k].2,
        );
        table.row(
            name,
            format!("encode {encode:.0} ns, decode {decode:.0} ns, {bytes:.1} bytes"),
            if k == 0 { "" } else { "the derive" },
            if k == 0 {
                String::new()
            } else {
                format!(
                    "encode {:.2}x, decode {:.2}x",
                    encode / base.0,
                    decode / base.1
                )
            },
        );
    }
    println!("\n{n} events per run (10% opened, 60% deposits, half with a memo, 30% withdrawals)");
    table.print(runs);
    Ok(())
}
