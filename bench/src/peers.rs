//! The peers every hivemind figure is printed beside, measured in the same run: Zenoh in one
//! session, Zenoh between two processes over TCP loopback (the bench binary started again as
//! the other process), a Unix socket (ping-pong and a pipelined stream) and a plain crossbeam
//! channel.
//!
//! Every peer does the JSON work a node does per message: the sender encodes the payload with
//! `serde_json` (as `Service::send` does), the receiver parses it into a `serde_json::Value`
//! (as `Message::payload` does). The payloads are the bench node's: a 32-byte string, or the
//! 4 KiB object, or `{"seq":n}` for the mesh's flood.

use anyhow::{Context as _, Result, bail};
use crossbeam_channel::bounded;
use serde_json::Value;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zenoh::Wait;
use zenoh::qos::CongestionControl;

/// The command that makes the bench binary the far side of the two-process Zenoh peer.
pub const ZENOH_PEER_COMMAND: &str = "__zenoh_peer";

const CAPACITY: usize = 1024;

/// The bench node's small payload, a 32-byte string.
pub fn small() -> String {
    "x".repeat(32)
}

/// The bench node's 4 KiB payload.
pub fn four_kib() -> Value {
    let fields: serde_json::Map<String, Value> = (0..64)
        .map(|i| {
            (
                format!("field_{i:02}"),
                Value::String(format!("{:0>50}", i)),
            )
        })
        .collect();
    Value::Object(fields)
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Messages per second through a bounded channel (1,024) between two threads, `payload`
/// encoded on send and parsed on receive.
pub fn channel(count: u64, payload: &Value) -> f64 {
    channel_fan_out(count, 1, payload)
}

/// Messages per second per receiver, one sender encoding each message once and sending it
/// (shared, as the bus shares a payload) to `receivers` threads, each parsing it.
pub fn channel_fan_out(count: u64, receivers: usize, payload: &Value) -> f64 {
    let (senders, consumers): (Vec<_>, Vec<_>) = (0..receivers)
        .map(|_| {
            let (sender, receiver) = bounded::<Arc<str>>(CAPACITY);
            let consumer = std::thread::spawn(move || {
                let mut fields = 0usize;
                for text in receiver.iter().take(count as usize) {
                    fields += usize::from(!parse(text.as_bytes()).is_null());
                }
                fields
            });
            (sender, consumer)
        })
        .unzip();
    let started = Instant::now();
    for _ in 0..count {
        let text: Arc<str> = serde_json::to_string(payload)
            .expect("a value serialises")
            .into();
        for sender in &senders {
            sender.send(text.clone()).expect("the receiver runs");
        }
    }
    for consumer in consumers {
        std::hint::black_box(consumer.join().expect("the receiver finished"));
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Latency percentiles (p50, p99) in µs through the channel, `count` messages at `rate` per
/// second, each carrying its send time as JSON.
pub fn channel_latency(count: u64, rate: u64) -> (f64, f64) {
    let epoch = Instant::now();
    let (sender, receiver) = bounded::<String>(CAPACITY);
    let consumer = std::thread::spawn(move || {
        let mut latencies: Vec<f64> = receiver
            .iter()
            .take(count as usize)
            .map(|text| {
                let sent = parse(text.as_bytes())["t"].as_u64().unwrap_or(0);
                (epoch.elapsed().as_nanos() as u64).saturating_sub(sent) as f64 / 1e3
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        latencies
    });
    pace(count, rate, |n| {
        let t = epoch.elapsed().as_nanos() as u64;
        let text = serde_json::to_string(&serde_json::json!({ "t": t, "n": n }))
            .expect("a value serialises");
        sender.send(text).expect("the receiver runs");
    });
    let latencies = consumer.join().expect("the receiver finished");
    (
        crate::stats::percentile(&latencies, 50.0),
        crate::stats::percentile(&latencies, 99.0),
    )
}

/// Calls `send(n)` `count` times at `rate` per second on absolute deadlines.
fn pace(count: u64, rate: u64, mut send: impl FnMut(u64)) {
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let started = Instant::now();
    for n in 0..count {
        let next = started + interval * n as u32;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        send(n);
    }
}

/// A Zenoh peer session with no scouting; listening on `listen` and connecting to `connect`.
pub fn zenoh_session(listen: &[String], connect: &[String]) -> Result<zenoh::Session> {
    let mut config = zenoh::Config::default();
    let mut set = |key: &str, value: String| {
        config
            .insert_json5(key, &value)
            .map_err(|e| anyhow::anyhow!("zenoh config `{key}`: {e}"))
    };
    set("mode", "\"peer\"".into())?;
    set("scouting/multicast/enabled", "false".into())?;
    set("listen/endpoints", serde_json::to_string(listen)?)?;
    set("connect/endpoints", serde_json::to_string(connect)?)?;
    zenoh::open(config)
        .wait()
        .map_err(|e| anyhow::anyhow!("cannot open a zenoh session: {e}"))
}

/// Deliveries per second through Zenoh within one session: a publisher and `subscribers`
/// callback subscribers (run inline by `put`), the 32-byte payload encoded per put and parsed
/// in each callback.
pub fn zenoh_one_session(count: u64, subscribers: usize) -> Result<f64> {
    let session = zenoh_session(&[], &[])?;
    let delivered = Arc::new(AtomicU64::new(0));
    let mut held = Vec::new();
    for _ in 0..subscribers {
        let delivered = delivered.clone();
        held.push(
            session
                .declare_subscriber("bench/*")
                .callback(move |sample| {
                    let value = parse(&sample.payload().to_bytes());
                    delivered.fetch_add(u64::from(!value.is_null()), Ordering::Relaxed);
                })
                .wait()
                .map_err(|e| anyhow::anyhow!("zenoh subscriber: {e}"))?,
        );
    }
    let publisher = session
        .declare_publisher("bench/a")
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(|e| anyhow::anyhow!("zenoh publisher: {e}"))?;
    let payload = small();
    let started = Instant::now();
    for _ in 0..count {
        let bytes = serde_json::to_vec(&payload)?;
        publisher
            .put(bytes)
            .wait()
            .map_err(|e| anyhow::anyhow!("zenoh put: {e}"))?;
    }
    let expected = count * subscribers as u64;
    while delivered.load(Ordering::Relaxed) < expected {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("zenoh delivered {delivered:?} of {expected}");
        }
        std::thread::yield_now();
    }
    let rate = expected as f64 / started.elapsed().as_secs_f64();
    drop(publisher);
    drop(held);
    let _ = session.close().wait();
    Ok(rate)
}

/// Zenoh between this process and another (the bench binary as [`ZENOH_PEER_COMMAND`]) over
/// TCP loopback: the far side counts the flood and echoes pings.
pub struct ZenohPair {
    session: zenoh::Session,
    child: std::process::Child,
    pongs: crossbeam_channel::Receiver<Vec<u8>>,
    done: crossbeam_channel::Receiver<()>,
    _subscribers: Vec<zenoh::pubsub::Subscriber<()>>,
    flood: u64,
}

impl ZenohPair {
    /// Starts the other process, connected to this one, which expects floods of `flood`.
    pub fn start(flood: u64) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let endpoint = format!("tcp/127.0.0.1:{port}");
        let session = zenoh_session(std::slice::from_ref(&endpoint), &[])?;
        let (pong_sender, pongs) = bounded(16);
        let (done_sender, done) = bounded(16);
        let subscribers = vec![
            session
                .declare_subscriber("bench/pong")
                .callback(move |sample| {
                    let _ = pong_sender.try_send(sample.payload().to_bytes().into_owned());
                })
                .wait()
                .map_err(|e| anyhow::anyhow!("zenoh subscriber: {e}"))?,
            session
                .declare_subscriber("bench/done")
                .callback(move |_| {
                    let _ = done_sender.try_send(());
                })
                .wait()
                .map_err(|e| anyhow::anyhow!("zenoh subscriber: {e}"))?,
        ];
        let child = std::process::Command::new(std::env::current_exe()?)
            .args([ZENOH_PEER_COMMAND, &endpoint, &flood.to_string()])
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("cannot start the bench's second process")?;
        let pair = Self {
            session,
            child,
            pongs,
            done,
            _subscribers: subscribers,
            flood,
        };
        // Ping until the first pong: the other side is connected and subscribed.
        let ping = pair
            .session
            .declare_publisher("bench/ping")
            .wait()
            .map_err(|e| anyhow::anyhow!("zenoh publisher: {e}"))?;
        let started = Instant::now();
        loop {
            ping.put(b"{\"seq\":0}".to_vec())
                .wait()
                .map_err(|e| anyhow::anyhow!("zenoh put: {e}"))?;
            if pair.pongs.recv_timeout(Duration::from_millis(20)).is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("the bench's second zenoh process never answered");
            }
        }
        while pair.pongs.try_recv().is_ok() {}
        Ok(pair)
    }

    /// Messages per second of a flood (`{"seq":n}`, encoded per put, parsed on the other side),
    /// timed until the other side has parsed them all.
    pub fn throughput(&self) -> Result<f64> {
        let publisher = self
            .session
            .declare_publisher("bench/flood")
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(|e| anyhow::anyhow!("zenoh publisher: {e}"))?;
        let started = Instant::now();
        for seq in 0..self.flood {
            let bytes = serde_json::to_vec(&serde_json::json!({ "seq": seq }))?;
            publisher
                .put(bytes)
                .wait()
                .map_err(|e| anyhow::anyhow!("zenoh put: {e}"))?;
        }
        self.done
            .recv_timeout(Duration::from_secs(60))
            .context("the other zenoh process did not report the whole flood")?;
        Ok(self.flood as f64 / started.elapsed().as_secs_f64())
    }

    /// Round-trip p50 and p99 in µs, back to back: a ping encoded, parsed and answered on the
    /// other side, the pong parsed here.
    pub fn round_trip(&self, samples: usize, express: bool) -> Result<(f64, f64)> {
        let ping = self
            .session
            .declare_publisher("bench/ping")
            .express(express)
            .wait()
            .map_err(|e| anyhow::anyhow!("zenoh publisher: {e}"))?;
        let mut took = Vec::with_capacity(samples);
        for seq in 0..samples + samples / 10 {
            let started = Instant::now();
            let bytes = serde_json::to_vec(&serde_json::json!({ "seq": seq }))?;
            ping.put(bytes)
                .wait()
                .map_err(|e| anyhow::anyhow!("zenoh put: {e}"))?;
            let pong = self
                .pongs
                .recv_timeout(Duration::from_secs(5))
                .context("no pong from the other zenoh process")?;
            std::hint::black_box(parse(&pong));
            if seq >= samples / 10 {
                took.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
        took.sort_by(f64::total_cmp);
        Ok((
            crate::stats::percentile(&took, 50.0),
            crate::stats::percentile(&took, 99.0),
        ))
    }
}

impl Drop for ZenohPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The far side of [`ZenohPair`]: connects to `endpoint`, reports each `flood` messages of
/// `bench/flood` on `bench/done`, answers each `bench/ping` on `bench/pong`. Runs until killed.
pub fn zenoh_peer_main(endpoint: &str, flood: &str) -> Result<()> {
    let flood: u64 = flood.parse().context("the flood size is a number")?;
    let session = zenoh_session(&[], &[endpoint.to_owned()])?;
    let done = session
        .declare_publisher("bench/done")
        .wait()
        .map_err(|e| anyhow::anyhow!("zenoh publisher: {e}"))?;
    let pong = session
        .declare_publisher("bench/pong")
        .express(true)
        .wait()
        .map_err(|e| anyhow::anyhow!("zenoh publisher: {e}"))?;
    let counted = AtomicU64::new(0);
    let _flood = session
        .declare_subscriber("bench/flood")
        .callback(move |sample| {
            std::hint::black_box(parse(&sample.payload().to_bytes()));
            if counted.fetch_add(1, Ordering::Relaxed) + 1 == flood {
                counted.store(0, Ordering::Relaxed);
                let _ = done.put(b"true".to_vec()).wait();
            }
        })
        .wait()
        .map_err(|e| anyhow::anyhow!("zenoh subscriber: {e}"))?;
    let _ping = session
        .declare_subscriber("bench/ping")
        .callback(move |sample| {
            let value = parse(&sample.payload().to_bytes());
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            let _ = pong.put(bytes).wait();
        })
        .wait()
        .map_err(|e| anyhow::anyhow!("zenoh subscriber: {e}"))?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn write_frame(to: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    to.write_all(&(bytes.len() as u32).to_le_bytes())?;
    to.write_all(bytes)
}

fn read_frame(from: &mut impl Read, into: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    into.resize(u32::from_le_bytes(len) as usize, 0);
    from.read_exact(into)
}

/// Round-trip p50 and p99 in µs over a Unix socket pair between two threads: a
/// length-prefixed JSON ping, parsed and re-encoded by the other thread, the pong parsed here.
pub fn unix_ping_pong(samples: usize) -> Result<(f64, f64)> {
    let (mut here, mut there) = UnixStream::pair()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut frame = Vec::new();
        while read_frame(&mut there, &mut frame).is_ok() {
            let bytes = serde_json::to_vec(&parse(&frame)).unwrap_or_default();
            write_frame(&mut there, &bytes)?;
        }
        Ok(())
    });
    let mut took = Vec::with_capacity(samples);
    let mut frame = Vec::new();
    for seq in 0..samples + samples / 10 {
        let started = Instant::now();
        let bytes = serde_json::to_vec(&serde_json::json!({ "seq": seq }))?;
        write_frame(&mut here, &bytes)?;
        read_frame(&mut here, &mut frame)?;
        std::hint::black_box(parse(&frame));
        if seq >= samples / 10 {
            took.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(here);
    let _ = echo.join();
    took.sort_by(f64::total_cmp);
    Ok((
        crate::stats::percentile(&took, 50.0),
        crate::stats::percentile(&took, 99.0),
    ))
}

/// Messages per second streamed over a Unix socket pair between two threads: the 32-byte
/// payload encoded and framed into 64 KiB buffered writes, read back through a buffer and
/// parsed.
pub fn unix_stream(count: u64) -> Result<f64> {
    let (here, there) = UnixStream::pair()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut from = BufReader::with_capacity(64 * 1024, there);
        let mut frame = Vec::new();
        let mut parsed = 0;
        for _ in 0..count {
            read_frame(&mut from, &mut frame)?;
            parsed += u64::from(!parse(&frame).is_null());
        }
        Ok(parsed)
    });
    let payload = small();
    let started = Instant::now();
    let mut to = BufWriter::with_capacity(64 * 1024, here);
    for _ in 0..count {
        let bytes = serde_json::to_vec(&payload)?;
        write_frame(&mut to, &bytes)?;
    }
    to.flush()?;
    let parsed = reader.join().expect("the reader finished")?;
    if parsed != count {
        bail!("the socket reader parsed {parsed} of {count}");
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// This thread's voluntary context switches so far (each is a sleep, then a wake-up).
fn own_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("voluntary_ctxt_switches:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// How a consumer thread waits for its queue, for [`handoff`].
#[derive(Debug, Clone, Copy)]
pub enum Waiting {
    /// The node loop before issue 13: drain up to 64, then spin and `sched_yield`
    /// (`crossbeam_utils::Backoff`), then `select!` over the queue and a control channel.
    SpinYieldSelect,
    /// The node loop now: drain everything, then park on the queue's doorbell.
    Doorbell,
}

/// The hand-off alone, 1→1 between two threads with the node's JSON work: messages per second
/// and the consumer's sleeps (voluntary context switches) per message.
pub fn handoff(count: u64, wait: Waiting) -> (f64, f64) {
    use hivemind_host::Doorbell;
    let (sender, inbox) = bounded::<Arc<str>>(CAPACITY);
    let (_control_sender, control) = bounded::<()>(1);
    let bell = Arc::new(Doorbell::new());
    let consumer_bell = bell.clone();
    let consumer = std::thread::spawn(move || {
        let before = own_switches();
        let mut parsed = 0u64;
        let mut take = |text: Arc<str>| parsed += u64::from(!parse(text.as_bytes()).is_null());
        let mut seen = 0u64;
        consumer_bell.attach();
        while seen < count {
            let mut handled = 0;
            while let Ok(text) = inbox.try_recv() {
                take(text);
                handled += 1;
                if matches!(wait, Waiting::SpinYieldSelect) && handled == 64 {
                    break;
                }
            }
            seen += handled;
            if handled > 0 || seen >= count {
                continue;
            }
            match wait {
                Waiting::SpinYieldSelect => {
                    let backoff = crossbeam_utils::Backoff::new();
                    let mut arrived = false;
                    while !backoff.is_completed() {
                        if !inbox.is_empty() {
                            arrived = true;
                            break;
                        }
                        backoff.snooze();
                    }
                    if arrived {
                        continue;
                    }
                    crossbeam_channel::select! {
                        recv(inbox) -> text => if let Ok(text) = text {
                            take(text);
                            seen += 1;
                        },
                        recv(control) -> _ => {}
                    }
                }
                Waiting::Doorbell => consumer_bell.sleep_unless(|| !inbox.is_empty()),
            }
        }
        std::hint::black_box(parsed);
        own_switches() - before
    });
    let payload = small();
    let started = Instant::now();
    for _ in 0..count {
        let text: Arc<str> = serde_json::to_string(&payload)
            .expect("a string serialises")
            .into();
        sender.send(text).expect("the consumer runs");
        bell.ring();
    }
    let switches = consumer.join().expect("the consumer finished");
    let rate = count as f64 / started.elapsed().as_secs_f64();
    (rate, switches as f64 / count as f64)
}
