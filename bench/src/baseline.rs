//! The same message patterns through a plain bounded crossbeam channel between threads: no
//! plugin boundary, no JSON, no routing. The floor the host is compared against.

use crossbeam_channel::bounded;
use std::time::{Duration, Instant};

const CAPACITY: usize = 1024;

/// Messages per second, one sender to one receiver, 32-byte messages.
pub fn one_to_one(count: u64) -> f64 {
    fan_out(count, 1)
}

/// Messages per second, one sender to one receiver, 4 KiB messages (boxed, as a payload would
/// be).
pub fn one_to_one_4k(count: u64) -> f64 {
    let (sender, receiver) = bounded::<Box<[u8; 4096]>>(CAPACITY);
    let started = Instant::now();
    let consumer = std::thread::spawn(move || {
        let mut sum = 0u64;
        for message in receiver.iter().take(count as usize) {
            sum += u64::from(message[0]);
        }
        sum
    });
    for n in 0..count {
        let mut message = Box::new([0u8; 4096]);
        message[0] = n as u8;
        sender.send(message).expect("the receiver runs");
    }
    std::hint::black_box(consumer.join().expect("the receiver finished"));
    count as f64 / started.elapsed().as_secs_f64()
}

/// Messages per second per receiver, one sender copying each message to `receivers` channels.
pub fn fan_out(count: u64, receivers: usize) -> f64 {
    let (senders, consumers): (Vec<_>, Vec<_>) = (0..receivers)
        .map(|_| {
            let (sender, receiver) = bounded::<[u8; 32]>(CAPACITY);
            let consumer = std::thread::spawn(move || {
                let mut sum = 0u64;
                for message in receiver.iter().take(count as usize) {
                    sum += u64::from(message[0]);
                }
                sum
            });
            (sender, consumer)
        })
        .unzip();
    let started = Instant::now();
    for n in 0..count {
        let mut message = [0u8; 32];
        message[0] = n as u8;
        for sender in &senders {
            sender.send(message).expect("the receiver runs");
        }
    }
    for consumer in consumers {
        std::hint::black_box(consumer.join().expect("the receiver finished"));
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Messages per second into one receiver from `senders` threads sending `count` each.
pub fn fan_in(count: u64, senders: usize) -> f64 {
    let (sender, receiver) = bounded::<[u8; 32]>(CAPACITY);
    let total = count * senders as u64;
    let started = Instant::now();
    let producers: Vec<_> = (0..senders)
        .map(|_| {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for n in 0..count {
                    let mut message = [0u8; 32];
                    message[0] = n as u8;
                    sender.send(message).expect("the receiver runs");
                }
            })
        })
        .collect();
    let mut sum = 0u64;
    for message in receiver.iter().take(total as usize) {
        sum += u64::from(message[0]);
    }
    std::hint::black_box(sum);
    for producer in producers {
        producer.join().expect("the sender finished");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Latency percentiles (p50, p99, p99.9) in µs of `count` messages sent at `rate` per second.
pub fn latency(count: u64, rate: u64) -> (f64, f64, f64) {
    let (sender, receiver) = bounded::<Instant>(CAPACITY);
    let consumer = std::thread::spawn(move || {
        let mut latencies: Vec<Duration> = receiver
            .iter()
            .take(count as usize)
            .map(|sent| sent.elapsed())
            .collect();
        latencies.sort_unstable();
        latencies
    });
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let started = Instant::now();
    for n in 0..count {
        let next = started + interval * n as u32;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        sender.send(Instant::now()).expect("the receiver runs");
    }
    let latencies = consumer.join().expect("the receiver finished");
    let at = |p: f64| {
        let rank = ((p / 100.0) * (latencies.len() - 1) as f64).round() as usize;
        latencies[rank].as_secs_f64() * 1e6
    };
    (at(50.0), at(99.0), at(99.9))
}
