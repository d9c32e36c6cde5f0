//! Batman node for the example hive: answers every bat signal.

use hivemind::prelude::*;

/// The caped crusader.
pub struct Batman {
    saves: u64,
}

impl Node for Batman {
    fn new(_context: &Context) -> Result<Self> {
        Ok(Batman { saves: 0 })
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        // Stay vigilant: every service whose name starts with `bat-signal-`.
        hive.add_subscription("bat-signal-*", Batman::go_save_the_day);
    }
}

impl Batman {
    fn go_save_the_day(&mut self, message: &Message) -> Result<()> {
        match message.payload().as_str() {
            Some("Batman! We need help!") => {
                self.saves += 1;
                println!("Batman has saved the day!");
                info!(
                    "saved the day {} times (signal from {})",
                    self.saves,
                    message.node()
                );
            }
            Some(_) => println!("Oh no! Batman doesn't know what to do!"),
            None => warn!("Unknown payload type: {}", message.json()),
        }
        Ok(())
    }
}

hivemind::export_node!(Batman);
