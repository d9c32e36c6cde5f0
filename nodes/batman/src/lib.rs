//! Batman node for the example hive: answers every bat signal, and keeps his count of saves in
//! his store (`data/batman.db`, key `saves`), so that it survives reloads, restarts and crashes.

use hivemind::prelude::*;

/// The caped crusader.
pub struct Batman {
    saves: u64,
    store: Store,
}

impl Node for Batman {
    fn new(context: &Context) -> Result<Self> {
        let store = context.store();
        let saves = store.get("saves")?.unwrap_or(0);
        Ok(Batman { saves, store })
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
                self.store.put("saves", &self.saves)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use hivemind::Level;
    use hivemind::testing::TestNode;

    #[test]
    fn every_bat_signal_is_answered_and_counted() {
        let mut node = TestNode::<Batman>::new().unwrap();
        assert_eq!(node.subscriptions(), ["bat-signal-*"]);
        for _ in 0..2 {
            let matched = node
                .deliver_from("batsignal", "bat-signal-main", "Batman! We need help!")
                .unwrap();
            assert_eq!(matched, 1);
        }
        let logs = node.logs();
        assert!(
            logs.iter()
                .any(|line| line.message == "saved the day 2 times (signal from batsignal)"),
            "{logs:?}"
        );
        assert_eq!(node.store().get::<u64>("saves").unwrap(), Some(2));
        // A new instance (a reload, a restart of the hive) counts on from the store.
        let mut next = node.reload().unwrap();
        next.deliver_from("batsignal", "bat-signal-main", "Batman! We need help!")
            .unwrap();
        assert_eq!(next.store().get::<u64>("saves").unwrap(), Some(3));
    }

    #[test]
    fn other_services_do_not_reach_him_and_odd_payloads_are_warned_about() {
        let mut node = TestNode::<Batman>::new().unwrap();
        assert_eq!(node.deliver("joker-laugh", "ha ha").unwrap(), 0);
        assert_eq!(node.deliver("bat-signal-main", &42).unwrap(), 1);
        let logs = node.logs();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(logs[0].level, Level::Warn);
        assert_eq!(logs[0].message, "Unknown payload type: 42");
    }
}
