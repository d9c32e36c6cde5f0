//! Fan-in through a plain bounded crossbeam channel between threads: raw 32-byte values, no
//! JSON, no routing (the other channel peers, with the JSON work, are in [`crate::peers`]).

use crossbeam_channel::bounded;
use std::time::Instant;

const CAPACITY: usize = 1024;

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
