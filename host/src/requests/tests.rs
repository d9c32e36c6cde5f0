//! The router's promises, without nodes: exactly one outcome per request, failures known at
//! once, responders replaced and withdrawn per instance.

use super::*;
use crate::bus::Doorbell;

fn router() -> Router {
    Router::new("here".into(), 64)
}

fn desk() -> Desk {
    Desk::new(Arc::new(Doorbell::new()))
}

fn ask(name: &str, all: bool) -> Ask {
    Ask {
        name: name.into(),
        args: "null".into(),
        from_node: "test".into(),
        from_host: "here".into(),
        timeout: Duration::from_secs(30),
        all,
    }
}

fn names(list: &[&str]) -> Vec<(String, String)> {
    list.iter()
        .map(|n| (n.to_string(), format!("help of {n}")))
        .collect()
}

#[test]
fn no_responder_and_too_large_are_known_at_once() {
    let router = router();
    let error = router.ask_blocking(ask("nobody", false)).unwrap_err();
    assert_eq!(error.kind, FailureKind::NoResponder);
    router.register(&"a".into(), 1, &names(&["x"]), &desk());
    let mut big = ask("x", false);
    big.args = format!("\"{}\"", "y".repeat(100));
    assert_eq!(
        router.ask_blocking(big).unwrap_err().kind,
        FailureKind::TooLarge
    );
    let stats = router.stats();
    assert_eq!(
        stats.iter().find(|(n, _)| n == "nobody").unwrap().1.errors["no_responder"],
        1
    );
}

#[test]
fn a_job_answered_or_dropped_ends_its_request_once() {
    let router = router();
    let desk = desk();
    router.register(&"a".into(), 1, &names(&["x"]), &desk);
    let (sender, outcomes) = crossbeam_channel::unbounded();
    for _ in 0..2 {
        let sender = sender.clone();
        router.ask(ask("x", false), move |o| sender.send(o).unwrap());
    }
    let first = desk.inbox.try_recv().unwrap();
    assert_eq!((&*first.name, &*first.from_node), ("x", "test"));
    first.answer(Ok("42".into()));
    let reply = outcomes.try_recv().unwrap().unwrap();
    assert_eq!(reply[0].as_ref().unwrap().json, "42");
    assert_eq!(desk.drain(), 1);
    let restarted = outcomes.try_recv().unwrap().unwrap();
    let failure = restarted[0].as_ref().unwrap_err();
    assert_eq!(failure.kind, FailureKind::Restarted);
    assert_eq!(failure.node.as_deref(), Some("a"));
    assert!(outcomes.try_recv().is_err(), "one outcome per request");
}

#[test]
fn request_all_gathers_every_responder_and_the_late_ones_time_out() {
    let router = router();
    let desks = [desk(), desk(), desk()];
    for (i, desk) in desks.iter().enumerate() {
        router.register(&format!("n{i}").into(), 1, &names(&["x"]), desk);
    }
    let (sender, outcomes) = crossbeam_channel::unbounded();
    let mut quick = ask("x", true);
    quick.timeout = Duration::from_millis(50);
    router.ask(quick, move |o| sender.send(o).unwrap());
    desks[0].inbox.try_recv().unwrap().answer(Ok("0".into()));
    desks[2]
        .inbox
        .try_recv()
        .unwrap()
        .answer(Err(Failure::new(FailureKind::HandlerError, "no")));
    let parts = outcomes.recv().unwrap().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].as_ref().unwrap().node, "n0");
    assert_eq!(parts[1].as_ref().unwrap_err().kind, FailureKind::Timeout);
    assert_eq!(
        parts[2].as_ref().unwrap_err().kind,
        FailureKind::HandlerError
    );
    // The late job, answered after the timeout, changes nothing.
    desks[1].inbox.try_recv().unwrap().answer(Ok("1".into()));
    assert!(outcomes.try_recv().is_err());
}

#[test]
fn a_later_instance_keeps_its_names_when_an_earlier_one_withdraws() {
    let router = router();
    let desk = desk();
    router.register(&"a".into(), 1, &names(&["x", "y"]), &desk);
    router.register(&"a".into(), 2, &names(&["y"]), &desk);
    assert_eq!(router.names_of("a"), ["y"]);
    router.withdraw("a", 1);
    assert_eq!(router.names_of("a"), ["y"]);
    router.withdraw("a", 2);
    assert!(router.names_of("a").is_empty());
    assert_eq!(kind_from_name("restarted"), Some(FailureKind::Restarted));
}

/// A responder elsewhere that answers at once with its own name.
struct Elsewhere;

impl Remote for Elsewhere {
    fn responders(&self, name: &str) -> Vec<(String, String)> {
        if name == "x" || name == "far" {
            vec![("remote-node".into(), "other-host".into())]
        } else {
            Vec::new()
        }
    }

    fn listed(&self) -> Vec<RemoteResponder> {
        ["x", "far"]
            .into_iter()
            .map(|name| RemoteResponder {
                name: name.into(),
                node: "remote-node".into(),
                host: "other-host".into(),
                help: format!("{name} from afar"),
            })
            .collect()
    }

    fn ask(&self, _ask: &Ask, node: &str, host: &str, done: Box<dyn FnOnce(Part) + Send>) {
        done(Ok(Answer {
            node: node.into(),
            host: host.into(),
            json: "\"far away\"".into(),
        }));
    }
}

#[test]
fn this_hosts_responder_is_preferred_and_all_asks_everywhere() {
    let router = router();
    router.set_remote(Some(Arc::new(Elsewhere)));
    let desk = desk();
    router.register(&"a".into(), 1, &names(&["x"]), &desk);
    let (sender, outcomes) = crossbeam_channel::unbounded();
    let send = sender.clone();
    router.ask(ask("x", false), move |o| send.send(o).unwrap());
    desk.inbox.try_recv().unwrap().answer(Ok("1".into()));
    let parts = outcomes.recv().unwrap().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(
        parts[0].as_ref().unwrap().host,
        "here",
        "the local node answers"
    );

    let far = router.ask_blocking(ask("far", false)).unwrap();
    assert_eq!(
        far[0].as_ref().unwrap().node,
        "remote-node",
        "none here: the one elsewhere"
    );

    router.ask(ask("x", true), move |o| sender.send(o).unwrap());
    desk.inbox.try_recv().unwrap().answer(Ok("1".into()));
    let parts = outcomes.recv().unwrap().unwrap();
    let hosts: Vec<&str> = parts
        .iter()
        .map(|p| p.as_ref().unwrap().host.as_str())
        .collect();
    assert_eq!(hosts, ["here", "other-host"]);
    let listed = router.list();
    let x = listed.iter().find(|r| r.name == "x").unwrap();
    assert_eq!(x.responders.len(), 2);
    assert_eq!(x.responders[0].host, "here", "this host's first");
    let far = listed.iter().find(|r| r.name == "far").unwrap();
    assert_eq!(
        (far.responders[0].host.as_str(), far.help.as_str()),
        ("other-host", "far from afar"),
        "a name answered only elsewhere is listed, with its help"
    );
}

#[test]
fn a_request_from_another_host_reaches_the_node_it_names_only() {
    let router = router();
    router.set_remote(Some(Arc::new(Elsewhere)));
    let (a, b) = (desk(), desk());
    router.register(&"a".into(), 1, &names(&["x"]), &a);
    router.register(&"b".into(), 1, &names(&["x"]), &b);
    let (sender, outcomes) = crossbeam_channel::unbounded();
    let send = sender.clone();
    router.route_to(ask("x", false), "b", move |o| send.send(o).unwrap());
    assert!(a.inbox.is_empty(), "not the first responder: the one named");
    b.inbox.try_recv().unwrap().answer(Ok("2".into()));
    let parts = outcomes.recv().unwrap().unwrap();
    assert_eq!(parts[0].as_ref().unwrap().node, "b");
    router.route_to(ask("far", false), "remote-node", move |o| {
        sender.send(o).unwrap()
    });
    let failure = outcomes.recv().unwrap().unwrap_err();
    assert_eq!(
        failure.kind,
        FailureKind::NoResponder,
        "never on to a third host"
    );
    assert!(
        router.stats().is_empty(),
        "asks served for another host are that host's to count"
    );
}

#[test]
fn requests_waiting_on_a_replaced_desk_move_to_the_new_one_in_order() {
    let router = router();
    let (old, new) = (desk(), desk());
    router.register(&"a".into(), 1, &names(&["x"]), &old);
    let (sender, outcomes) = crossbeam_channel::unbounded();
    for n in 0..3 {
        let sender = sender.clone();
        let mut asked = ask("x", false);
        asked.args = n.to_string();
        router.ask(asked, move |o| sender.send(o).unwrap());
    }
    router.register(&"a".into(), 2, &names(&["x"]), &new);
    assert!(old.inbox.is_empty());
    let args: Vec<String> = new
        .inbox
        .try_iter()
        .map(|job| {
            let args = job.args.to_string();
            job.answer(Ok(args.clone()));
            args
        })
        .collect();
    assert_eq!(args, ["0", "1", "2"]);
    assert_eq!(outcomes.try_iter().count(), 3);
}
