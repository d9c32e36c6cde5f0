//! The web server under attack, on the real `hm` over real TCP: DNS rebinding (a forged
//! `Host`), cross-site WebSockets and event streams, reads beyond loopback without the key,
//! slow and endless headers, idle sockets, one client taking every connection, a 64 MiB
//! WebSocket frame, HTTP/2 with its authority, and the key leaking through a config error or
//! vanishing in a live edit. Each test shows the hive and its nodes working on afterwards.

use hivemind_tests::browser::Browser;
use hivemind_tests::{Hive, Running, eventually, received_from, toml_path, wait_until};
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const KEY: &str = "hunter2-0f9c1e7a2b";

/// A hive with a `sender` node (service `ticks`, one tick each 50 ms) and a `receiver` node
/// subscribed to `tick*` and `manual-*` that records into `receiver.jsonl` and has a secret
/// setting `api_token`. `hive` lands in `[hive]`.
fn ticking_hive(hive: &str) -> Hive {
    let dir = Hive::new();
    let record = dir.file("receiver.jsonl");
    dir.configure(&format!(
        "{hive}\n\n[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"ticks\", count = 1000000, interval_ms = 50 }}]\n\n\
         [nodes.receiver]\nenabled = true\nlibrary = \"probe\"\n\
         subscriptions = [\"tick*\", \"manual-*\"]\nrecord = {}\napi_token = \"tok-5ecret-value\"\n",
        toml_path(&record)
    ));
    dir.install("probe");
    dir
}

/// The receiver keeps getting ticks: more arrive within `WAIT` than there are now.
fn still_ticking(hive: &Hive) {
    let record = hive.file("receiver.jsonl");
    let before = received_from(&record, "ticks").len();
    assert!(
        eventually(WAIT, || received_from(&record, "ticks").len() > before + 3),
        "the receiver stopped getting ticks ({before} so far)"
    );
}

/// An answer read off a raw socket.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }
}

/// Sends `request` as it is (with `Connection: close` added) and reads the whole answer.
fn raw(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    send_and_read(&mut stream, &request)
}

/// The resident memory of the `hm` process, in KiB.
fn resident_kib(running: &Running) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", running.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The value of an unlabelled metric, asked from `from` (a loopback address to connect from).
fn metric(running: &Running, name: &str) -> u64 {
    let answer = raw(
        running.address(),
        "GET",
        "/metrics",
        &[("Host", running.address())],
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Whether the server has closed `stream` (reads EOF or an error other than a timeout).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.N: a client address of
/// its own).
fn connect_from(from: &str, to: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    let to: SocketAddr = to.parse().unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// `GET /healthz` on `stream`: whether it answered `ok`.
fn healthy(mut stream: TcpStream, host: &str) -> bool {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok")
}

#[test]
fn a_forged_host_is_refused_for_reads_and_changes_and_listed_names_pass() {
    let hive = ticking_hive("hosts = [\"gotham.test\"]");
    let running = hive.run(&[]);
    let port = running.address().rsplit(':').next().unwrap().to_owned();
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil}");

    // A page of evil.example re-pointed to 127.0.0.1 is same-origin for the browser: Origin and
    // Host agree, so only the name gives it away.
    for (method, path) in [
        ("GET", "/api/nodes/receiver"),
        ("GET", "/"),
        ("GET", "/api/events"),
        ("POST", "/api/nodes/receiver/disable"),
        ("POST", "/api/publish/manual-x"),
    ] {
        let answer = raw(
            running.address(),
            method,
            path,
            &[("Host", &evil), ("Origin", &evil_origin)],
            "1",
        );
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        let error = answer.json();
        assert_eq!(error["setting"], "[hive] hosts", "{error}");
        assert!(
            error["error"].as_str().unwrap().contains("[hive] hosts"),
            "{error}"
        );
        assert_eq!(answer.header("connection").as_deref(), Some("close"));
    }
    // The wrong port is another name, too; no Host at all is refused.
    assert_eq!(
        raw(
            running.address(),
            "GET",
            "/api/nodes",
            &[("Host", "127.0.0.1:1")],
            ""
        )
        .status,
        403
    );
    assert_eq!(
        raw(running.address(), "GET", "/api/nodes", &[], "").status,
        400
    );

    // The names it answers to: loopback, and what [hive] hosts lists.
    for host in [
        format!("localhost:{port}"),
        format!("gotham.test:{port}"),
        running.address().to_owned(),
    ] {
        let answer = raw(
            running.address(),
            "GET",
            "/api/nodes/receiver",
            &[("Host", &host)],
            "",
        );
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
    }
    let origin = format!("http://gotham.test:{port}");
    let host = format!("gotham.test:{port}");
    let answer = raw(
        running.address(),
        "POST",
        "/api/publish/manual-ok",
        &[("Host", &host), ("Origin", &origin)],
        "7",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(eventually(WAIT, || received_from(
        &hive.file("receiver.jsonl"),
        "manual-ok"
    ) == [serde_json::json!(7)]));

    // Nothing the forged requests asked for happened.
    assert_eq!(running.node("receiver")["status"], "running");
    assert!(received_from(&hive.file("receiver.jsonl"), "manual-x").is_empty());
    still_ticking(&hive);
}

#[test]
fn pages_carry_framing_sniffing_referrer_and_content_policies() {
    let hive = ticking_hive("");
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    for path in [
        "/",
        "/nodes/receiver",
        "/static/app.js",
        "/api/hive",
        "/nope",
    ] {
        let answer = raw(&address, "GET", path, &[("Host", &address)], "");
        assert_eq!(
            answer.header("x-frame-options").as_deref(),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            answer.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            answer.header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
        let policy = answer.header("content-security-policy").unwrap_or_default();
        for part in [
            "frame-ancestors 'none'",
            "script-src 'self'",
            "style-src 'self'",
            &format!("connect-src 'self' ws://{address}"),
        ] {
            assert!(policy.contains(part), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }
    // The pages satisfy it: no inline script or style, only the JSON data block.
    let page = raw(
        &address,
        "GET",
        "/nodes/receiver",
        &[("Host", &address)],
        "",
    )
    .body;
    assert_eq!(page.matches("<script").count(), 2, "{page}");
    assert!(page.contains(r#"<script type="application/json" id="initial">"#));
    assert!(!page.contains("style="), "{page}");
    assert!(!page.contains("<style"), "{page}");
    let script = raw(&address, "GET", "/static/app.js", &[("Host", &address)], "").body;
    assert!(!script.contains("setAttribute('style'") && script.contains("style.cssText"));
    still_ticking(&hive);
}

#[test]
fn cross_site_websockets_and_event_streams_are_refused_before_taking_a_place() {
    let hive = ticking_hive("max_streams = 4");
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    // Any page the user opens could try: ws://127.0.0.1:PORT/api/subscribe from its origin.
    for attempt in 0..40 {
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{address}/api/subscribe?pattern=*"
        ))
        .unwrap();
        request
            .headers_mut()
            .insert("origin", "https://evil.example".parse().unwrap());
        match tungstenite::connect(request) {
            Ok(_) => panic!("attempt {attempt}: a WebSocket from another origin was accepted"),
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 403, "attempt {attempt}")
            }
            Err(e) => panic!("attempt {attempt}: {e}"),
        }
        let answer = raw(
            &address,
            "GET",
            "/api/events",
            &[
                ("Host", &address),
                ("Origin", "null"),
                ("Accept", "text/event-stream"),
            ],
            "",
        );
        assert_eq!(answer.status, 403, "{}", answer.body);
    }
    // Not one place was taken, no tap set up: the dashboard's own streams still open.
    assert_eq!(metric(&running, "hivemind_web_streams"), 0);
    assert_eq!(metric(&running, "hivemind_web_streams_refused_total"), 0);
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{address}/api/subscribe?pattern=ticks"
    ))
    .unwrap();
    request
        .headers_mut()
        .insert("origin", format!("http://{address}").parse().unwrap());
    let (mut socket, _) = tungstenite::connect(request).expect("the hive's own page may subscribe");
    let frame = loop {
        if let tungstenite::Message::Text(text) = socket.read().unwrap() {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(frame["service"], "ticks");
    still_ticking(&hive);
}

#[test]
fn beyond_loopback_every_request_but_healthz_needs_the_key() {
    let hive = ticking_hive(&format!("bind = \"0.0.0.0\"\nkey = \"{KEY}\""));
    let running = hive.run(&[]);
    let port = running.address().rsplit(':').next().unwrap().to_owned();
    let address = format!("127.0.0.1:{port}");
    let host = [("Host", address.as_str())];
    assert_eq!(raw(&address, "GET", "/healthz", &host, "").body, "ok");
    for path in [
        "/api/nodes",
        "/api/nodes/receiver",
        "/api/hive",
        "/api/events",
        "/metrics",
        "/static/app.js",
        "/api/nodes/receiver/log",
    ] {
        let answer = raw(&address, "GET", path, &host, "");
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
        assert_eq!(answer.json()["setting"], "[hive] key");
        assert!(!answer.body.contains("tok-5ecret"), "{path}");
    }
    // A browser asking for a page gets the key form, with its own nonce-only policy.
    let form = raw(
        &address,
        "GET",
        "/nodes",
        &[("Host", &address), ("Accept", "text/html")],
        "",
    );
    assert_eq!(form.status, 401);
    assert!(form.body.contains("/api/session") && form.body.contains("type=\"password\""));
    let policy = form.header("content-security-policy").unwrap();
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert_eq!(
        form.body.matches(&format!("nonce=\"{nonce}\"")).count(),
        2,
        "{policy}"
    );
    assert!(
        !form.body.contains("tick"),
        "the form shows nothing of the hive"
    );

    // With the key in a header: the node, its secret setting redacted.
    let with_key = [("Host", address.as_str()), ("X-Hive-Key", KEY)];
    let answer = raw(&address, "GET", "/api/nodes/receiver", &with_key, "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let node = answer.json();
    assert_eq!(node["settings"]["api_token"], "<redacted>");
    assert_eq!(node["settings"]["subscriptions"][0], "tick*");
    assert!(
        !raw(&address, "GET", "/api/hive", &with_key, "")
            .body
            .contains("tok-5ecret")
    );
    assert_eq!(
        raw(
            &address,
            "GET",
            "/api/nodes",
            &[("Host", &address), ("X-Hive-Key", "wrong")],
            ""
        )
        .status,
        401
    );

    // The page's way: the key once to /api/session, then a cookie the streams carry.
    let session = raw(&address, "POST", "/api/session", &with_key, "");
    assert_eq!(session.status, 204, "{}", session.body);
    let cookie = session.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(KEY), "the cookie is not the key");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{address}/api/subscribe?pattern=ticks"
    ))
    .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut socket, _) = tungstenite::connect(request).expect("a session's WebSocket is accepted");
    assert!(matches!(
        socket.read().unwrap(),
        tungstenite::Message::Text(_)
    ));
    let page = raw(
        &address,
        "GET",
        "/nodes/receiver",
        &[("Host", &address), ("Cookie", &cookie)],
        "",
    );
    assert_eq!(page.status, 200);
    let origin = format!("http://{address}");
    let change = raw(
        &address,
        "POST",
        "/api/publish/manual-cookie",
        &[("Host", &address), ("Cookie", &cookie), ("Origin", &origin)],
        "1",
    );
    assert_eq!(change.status, 200, "{}", change.body);
    let forged = raw(
        &address,
        "GET",
        "/api/nodes",
        &[("Host", &address), ("Cookie", "hive-session=0123")],
        "",
    );
    assert_eq!(forged.status, 401);
    // Without a key the WebSocket is refused before the upgrade.
    match tungstenite::connect(format!("ws://{address}/api/subscribe?pattern=*")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("a WebSocket without the key: {:?}", other.map(|_| ())),
    }
    still_ticking(&hive);
}

/// Opens `count` connections to `address` that each send `head_bytes` of a request head that
/// never ends; returns them.
fn unfinished_heads(address: &str, count: usize, head_bytes: usize) -> Vec<TcpStream> {
    let filler = format!(
        "GET / HTTP/1.1\r\nHost: {address}\r\nX-Fill: {}",
        "a".repeat(head_bytes)
    );
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(address).unwrap();
            let _ = stream.write_all(filler.as_bytes());
            stream
        })
        .collect()
}

#[test]
fn slow_and_endless_headers_and_idle_sockets_are_cut_off_and_their_memory_reused() {
    const CLIENTS: usize = 150;
    const HEAD: usize = 60 * 1024;
    let hive = ticking_hive(
        "header_timeout_ms = 1500\nidle_timeout_ms = 3000\nmax_connections_per_address = 1000",
    );
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    // The baseline is taken once start-up's allocations have settled; nothing signals that
    // moment, so this stays a pause.
    std::thread::sleep(Duration::from_millis(500));
    let before = resident_kib(&running);

    // A head over the 64 KiB limit is refused at once.
    let mut big = unfinished_heads(&address, 1, 100 * 1024).pop().unwrap();
    big.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    // Slowloris: 60 KB of a head that never ends on each of 150 connections.
    let mut slow = unfinished_heads(&address, CLIENTS, HEAD);
    // One more dribbles a byte every 100 ms: bytes keep coming, the head never does.
    let mut dribbler = TcpStream::connect(&address).unwrap();
    dribbler
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let dribbling = std::thread::spawn(move || {
        let started = Instant::now();
        while dribbler.write_all(b"X").is_ok() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    });
    // And one says nothing at all.
    let mut silent = TcpStream::connect(&address).unwrap();
    // Every one of them held by the server (and the asking connection itself).
    let held = CLIENTS as u64 + 3;
    wait_until(
        WAIT,
        &format!("the server holds the {held} connections"),
        || metric(&running, "hivemind_web_connections") >= held,
    );
    let during = resident_kib(&running);
    // The hive answers meanwhile.
    assert_eq!(
        raw(&address, "GET", "/healthz", &[("Host", &address)], "").body,
        "ok"
    );

    for (n, stream) in slow.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream, WAIT),
            "slow client {n} was never cut off"
        );
    }
    assert!(
        closed_by_server(&mut silent, WAIT),
        "the silent client was never cut off"
    );
    let dribbled = dribbling.join().unwrap();
    assert!(
        dribbled < Duration::from_secs(15),
        "the dribbling client was kept {dribbled:?}"
    );
    drop(slow);
    let all_closed = || metric(&running, "hivemind_web_connections") <= 1;
    assert!(
        eventually(WAIT, all_closed),
        "{} connections still open",
        metric(&running, "hivemind_web_connections")
    );
    let after = resident_kib(&running);

    // Twice more: what the first wave cost is reused, not added to.
    for _ in 0..2 {
        let mut wave = unfinished_heads(&address, CLIENTS, HEAD);
        for stream in wave.iter_mut() {
            assert!(closed_by_server(stream, WAIT));
        }
        drop(wave);
        assert!(eventually(WAIT, all_closed));
    }
    let again = resident_kib(&running);
    println!(
        "resident: {before} KiB before, {during} KiB with {CLIENTS} unfinished 60 KB heads, {after} KiB after, {again} KiB after two more waves"
    );
    // Bounded by the head limit while they are open...
    assert!(
        during < before + (CLIENTS * 2 * 64) as u64 + 8 * 1024,
        "{CLIENTS} heads cost {} KiB",
        during - before
    );
    // ...and reused afterwards: two more waves cost less than one more wave's worth (kept, all
    // of them, they would cost two; the allocator's per-thread caches may hold up to one).
    let wave = during.saturating_sub(before);
    assert!(
        again < after + wave,
        "memory grows with each wave: {after} KiB after the first, {again} KiB after three (a wave costs {wave} KiB)"
    );
    still_ticking(&hive);
}

#[test]
fn connections_are_capped_per_client_address_and_in_all() {
    let hive = ticking_hive(
        "max_connections = 8\nmax_connections_per_address = 3\nheader_timeout_ms = 60000\nidle_timeout_ms = 60000",
    );
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    // One client takes its three places with idle sockets...
    let hogs: Vec<TcpStream> = (0..3)
        .map(|_| connect_from("127.0.0.2", &address))
        .collect();
    // Held by the server: three, and the connection asking for the gauge.
    wait_until(WAIT, "the server holds the three idle sockets", || {
        metric(&running, "hivemind_web_connections") >= 4
    });
    // ...the fourth from it is refused at once, with the setting to raise...
    let mut fourth = connect_from("127.0.0.2", &address);
    fourth.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    let _ = fourth.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("max_connections_per_address"), "{answer}");
    // ...and other clients are served.
    assert!(healthy(connect_from("127.0.0.3", &address), &address));
    assert!(healthy(TcpStream::connect(&address).unwrap(), &address));

    // Fill the hive: 3 + 3 + 2 = 8 idle sockets from three addresses.
    let more: Vec<TcpStream> = (0..3)
        .map(|_| connect_from("127.0.0.4", &address))
        .chain((0..2).map(|_| connect_from("127.0.0.5", &address)))
        .collect();
    // Time for the server to take all eight: asking it how many it holds would take a place
    // itself (or be refused), so this one stays a pause.
    std::thread::sleep(Duration::from_millis(300));
    let mut refused = connect_from("127.0.0.6", &address);
    refused.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    let _ = refused.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("[hive] max_connections"),
        "{answer:?}"
    );

    // Places come back as soon as the sockets close.
    drop(hogs);
    drop(more);
    assert!(eventually(WAIT, || healthy(
        connect_from("127.0.0.2", &address),
        &address
    )));
    assert!(metric(&running, "hivemind_web_connections_refused_total") >= 2);
    still_ticking(&hive);
}

#[test]
fn a_64_mib_websocket_frame_is_refused_without_being_read() {
    let hive = ticking_hive("");
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    let (mut attacker, _) =
        tungstenite::connect(format!("ws://{address}/api/subscribe?pattern=ticks")).unwrap();
    let (mut bystander, _) =
        tungstenite::connect(format!("ws://{address}/api/subscribe?pattern=ticks")).unwrap();
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 2));
    let before = resident_kib(&running);
    // A masked binary frame announcing 64 MiB, then 16 MiB of it.
    let stream = match attacker.get_mut() {
        tungstenite::stream::MaybeTlsStream::Plain(stream) => stream,
        _ => unreachable!(),
    };
    let mut header = vec![0x82u8, 0x80 | 127];
    header.extend_from_slice(&(64u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&header).unwrap();
    let chunk = vec![0x55u8; 1 << 20];
    let mut sent = 0;
    for _ in 0..16 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
        sent += 1;
    }
    println!("the server took {sent} MiB of the frame's payload before closing");
    assert!(
        closed_by_server(stream, WAIT),
        "the 64 MiB frame was not refused"
    );
    let after = resident_kib(&running);
    assert!(
        after < before + 16 * 1024,
        "{before} KiB before, {after} KiB after the frame"
    );
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 1));
    // The other client streams on.
    let frame = loop {
        if let tungstenite::Message::Text(text) = bystander.read().unwrap() {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(frame["service"], "ticks");
    still_ticking(&hive);
}

/// One HTTP/2 request with prior knowledge, framed by hand (HPACK literals, no Huffman):
/// returns whether the answer was `:status 200` (HPACK static index 8) and its body.
fn http2_request(
    address: &str,
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (bool, String) {
    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }
    fn literal(block: &mut Vec<u8>, name: &str, value: &str) {
        block.push(0x00);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut block = Vec::new();
    literal(&mut block, ":method", method);
    literal(&mut block, ":scheme", "http");
    literal(&mut block, ":authority", authority);
    literal(&mut block, ":path", path);
    for (name, value) in headers {
        literal(&mut block, name, value);
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    out.extend(frame(0x1, 0x4 | 0x1, 1, &block));
    stream.write_all(&out).unwrap();
    let mut ok = None;
    let mut body = Vec::new();
    loop {
        let mut head = [0u8; 9];
        if stream.read_exact(&mut head).is_err() {
            break;
        }
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).unwrap();
        match kind {
            0x4 if flags & 1 == 0 => stream.write_all(&frame(0x4, 1, 0, &[])).unwrap(),
            0x1 if id == 1 => {
                ok = Some(payload.first() == Some(&0x88));
                if flags & 1 != 0 {
                    break;
                }
            }
            0x0 if id == 1 => {
                body.extend_from_slice(&payload);
                if flags & 1 != 0 {
                    break;
                }
            }
            0x7 => break,
            _ => {}
        }
    }
    (
        ok.expect("no answer headers"),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[test]
fn over_http2_the_dashboards_own_change_passes_by_its_authority() {
    let hive = ticking_hive("");
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    let origin = format!("http://{address}");
    // What the dashboard's Disable button sends, over HTTP/2 (no Host header there).
    let (ok, body) = http2_request(
        &address,
        "POST",
        &address,
        "/api/nodes/receiver/disable",
        &[("origin", &origin)],
    );
    assert!(ok, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "disabled",
        "{body}"
    );
    assert_eq!(running.node("receiver")["status"], "disabled");
    // A rebinding page over HTTP/2: refused by its authority.
    let port = address.rsplit(':').next().unwrap();
    let evil = format!("evil.example:{port}");
    let (ok, body) = http2_request(
        &address,
        "POST",
        &evil,
        "/api/nodes/receiver/enable",
        &[("origin", &format!("http://{evil}"))],
    );
    assert!(!ok);
    assert!(body.contains("[hive] hosts"), "{body}");
    assert_eq!(running.node("receiver")["status"], "disabled");
    let (ok, body) = http2_request(
        &address,
        "POST",
        &address,
        "/api/nodes/receiver/enable",
        &[("origin", &origin)],
    );
    assert!(ok, "{body}");
    assert!(eventually(WAIT, || running.node("receiver")["status"] == "running"));
    still_ticking(&hive);
}

/// Every event in `/api/events` so far, as text (read until a quiet second).
fn events_text(running: &Running, key: Option<&str>) -> String {
    let address = running.address().to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    let key_header = key
        .map(|k| format!("X-Hive-Key: {k}\r\n"))
        .unwrap_or_default();
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: {address}\r\n{key_header}Accept: text/event-stream\r\n\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut text = String::new();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        text.push_str(&line);
        line.clear();
    }
    text
}

#[test]
fn a_mistake_on_the_key_line_leaks_the_key_nowhere() {
    let hive = ticking_hive(&format!("key = \"{KEY}\""));
    let running = hive.run(&[]);
    let config_path = hive.path().join("config/hive.toml");
    let good = std::fs::read_to_string(&config_path).unwrap();
    // The key's closing quote goes missing.
    let broken = good.replace(&format!("key = \"{KEY}\""), &format!("key = \"{KEY}"));
    assert_ne!(broken, good);
    std::fs::write(&config_path, &broken).unwrap();
    let reported = eventually(WAIT, || {
        events_text(&running, None).contains("last good config")
    });
    let events = events_text(&running, None);
    assert!(reported, "the broken config was not reported:\n{events}");
    let line = broken.lines().position(|l| l.starts_with("key =")).unwrap() + 1;
    assert!(
        events.contains(&format!("line {line}")),
        "the error still says where: {events}"
    );
    assert!(events.contains("key = <redacted>"), "{events}");
    // Nowhere: the feed, the terminal, root.log, the API.
    let root_log = std::fs::read_to_string(hive.path().join("logs/root.log")).unwrap();
    for (place, text) in [
        ("/api/events", events.clone()),
        ("stderr", running.stderr()),
        ("stdout", running.stdout()),
        ("root.log", root_log),
        ("/api/hive", running.get("/api/hive").1),
        ("/api/nodes/receiver", running.get("/api/nodes/receiver").1),
    ] {
        assert!(!text.contains(KEY), "the key is in {place}:\n{text}");
        assert!(
            !text.contains("hunter2"),
            "part of the key is in {place}:\n{text}"
        );
        assert!(
            !text.contains("tok-5ecret"),
            "the node's token is in {place}:\n{text}"
        );
    }
    // The running hive keeps its key.
    let publish = |key: &str| {
        running
            .post("/api/publish/manual-k", "1", &[("x-hive-key", key)])
            .0
    };
    assert_eq!(publish("wrong"), 401);
    assert_eq!(publish(KEY), 200);
    std::fs::write(&config_path, &good).unwrap();
    still_ticking(&hive);
}

#[test]
fn removing_the_key_of_a_hive_beyond_loopback_while_it_runs_is_refused() {
    let hive = ticking_hive(&format!("bind = \"0.0.0.0\"\nkey = \"{KEY}\""));
    let running = hive.run(&[]);
    let port = running.address().rsplit(':').next().unwrap().to_owned();
    let address = format!("127.0.0.1:{port}");
    let config_path = hive.path().join("config/hive.toml");
    let good = std::fs::read_to_string(&config_path).unwrap();
    let unkeyed = good.replace(&format!("key = \"{KEY}\"\n"), "");
    assert_ne!(unkeyed, good);
    std::fs::write(&config_path, &unkeyed).unwrap();
    assert!(
        eventually(WAIT, || events_text(&running, Some(KEY))
            .contains("old key")),
        "the refused change was not reported:\n{}",
        events_text(&running, Some(KEY))
    );
    // Still closed without the key, reads and changes; open with the old one.
    let host = address.clone();
    assert_eq!(
        raw(&address, "GET", "/api/nodes", &[("Host", &host)], "").status,
        401
    );
    assert_eq!(
        raw(
            &address,
            "POST",
            "/api/publish/manual-n",
            &[("Host", &host)],
            "1"
        )
        .status,
        401
    );
    let answer = raw(
        &address,
        "POST",
        "/api/publish/manual-n",
        &[("Host", &host), ("X-Hive-Key", KEY)],
        "1",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(running.stderr().contains("old key"), "{}", running.stderr());
    still_ticking(&hive);
}

#[test]
fn beyond_loopback_the_dashboard_asks_for_the_key_once_and_keeps_it_nowhere() {
    let hive = ticking_hive(&format!("bind = \"0.0.0.0\"\nkey = \"{KEY}\""));
    let running = hive.run(&[]);
    let port = running.address().rsplit(':').next().unwrap().to_owned();
    let url = format!("http://127.0.0.1:{port}");
    let browser = Browser::start(1200, 800);

    // The page asks for the key (its script runs under a nonce-only policy)...
    browser.open(&format!("{url}/nodes"));
    browser.wait_until(
        "the key form is shown instead of the page",
        WAIT,
        "return document.getElementById('key-form') !== null && document.querySelectorAll('article.card').length === 0;",
    );
    browser.eval("document.getElementById('key').value = 'not the key'; return true;");
    browser.click("#key-form button");
    browser.wait_until(
        "a wrong key is refused",
        WAIT,
        "return document.getElementById('why').textContent.includes('not the key');",
    );
    browser.eval(&format!(
        "document.getElementById('key').value = '{KEY}'; return true;"
    ));
    browser.click("#key-form button");
    // ...then the dashboard works: its event stream (cookie) makes it live, its buttons change.
    browser.wait_until(
        "the nodes page is live after the key",
        WAIT,
        "return document.querySelectorAll('article.card').length === 2 \
         && document.getElementById('connection').textContent === 'live';",
    );
    browser.click("button[data-action=disable][data-node=receiver]");
    browser.wait_until(
        "the receiver is disabled from the page",
        WAIT,
        "const chip = document.querySelector('article.card[data-node=receiver] .chip'); \
         return chip !== null && chip.dataset.status === 'disabled';",
    );
    let headers = [
        ("Host", format!("127.0.0.1:{port}")),
        ("X-Hive-Key", KEY.to_owned()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let node = raw(
        &format!("127.0.0.1:{port}"),
        "GET",
        "/api/nodes/receiver",
        &headers,
        "",
    )
    .json();
    assert_eq!(node["status"], "disabled");
    // Another page of the same session needs no key; its WebSocket carries the cookie.
    browser.open(&format!("{url}/publish"));
    browser.wait_until(
        "the publish page is shown",
        WAIT,
        "return document.querySelector('#service') !== null;",
    );
    browser.click("form.row button");
    browser.wait_until(
        "the page's WebSocket receives ticks",
        WAIT,
        "return [...document.querySelectorAll('.messages .payload')].length > 0;",
    );
    // The key is nowhere in the page's reach: not in storage, not in a readable cookie.
    let exposed = browser.eval(&format!(
        "return JSON.stringify(localStorage).includes('{KEY}') || JSON.stringify(sessionStorage).includes('{KEY}') \
         || document.cookie.includes('hive-session') || location.href.includes('{KEY}');"
    ));
    assert_eq!(exposed, false);
    assert!(!running.stderr().contains(KEY));
    // Back on, and the hive works on.
    let enabled = raw(
        &format!("127.0.0.1:{port}"),
        "POST",
        "/api/nodes/receiver/enable",
        &headers,
        "",
    );
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    still_ticking(&hive);
}

/// Sends `request` (a whole HTTP/1.1 request) on a connection from the loopback address
/// `from` and reads the whole answer.
fn raw_from(from: &str, address: &str, request: &str) -> Answer {
    let mut stream = connect_from(from, address);
    stream.set_read_timeout(Some(WAIT)).unwrap();
    send_and_read(&mut stream, request)
}

/// `POST /api/publish/{service}` with `key` as `X-Hive-Key`, from the loopback address `from`.
fn publish_with_key(from: &str, address: &str, service: &str, key: &str) -> Answer {
    raw_from(
        from,
        address,
        &format!(
            "POST /api/publish/{service} HTTP/1.1\r\nHost: {address}\r\nX-Hive-Key: {key}\r\nConnection: close\r\nContent-Length: 1\r\n\r\n1"
        ),
    )
}

#[test]
fn wrong_keys_lock_their_address_out_and_the_right_key_from_another_is_never_slowed() {
    let hive = ticking_hive(&format!("key = \"{KEY}\""));
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    // Five wrong keys are answered 401; the sixth locks the guesser out.
    for n in 1..=6 {
        let answer = publish_with_key("127.0.0.2", &address, "manual-g", &format!("guess-{n}"));
        assert_eq!(answer.status, 401, "guess {n}: {}", answer.body);
    }
    // Now every key from there is refused before it is compared, the right one included.
    let started = Instant::now();
    let mut refused = 0;
    let mut compared = 0;
    for n in 0..200 {
        let answer = publish_with_key("127.0.0.2", &address, "manual-g", &format!("guess-x{n}"));
        match answer.status {
            429 => refused += 1,
            401 => compared += 1,
            other => panic!("guess {n}: {other} {}", answer.body),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        compared <= 1 + elapsed.as_secs() as usize,
        "{compared} keys were compared in {elapsed:?} while locked out"
    );
    assert!(refused >= 190, "only {refused} of 200 guesses got 429");
    // A guess compared once a lockout is over locks the address again, at once and longer.
    assert!(eventually(Duration::from_secs(60), || publish_with_key(
        "127.0.0.2",
        &address,
        "manual-g",
        "guess-again"
    )
    .status
        == 401));
    let locked = publish_with_key("127.0.0.2", &address, "manual-g", KEY);
    assert_eq!(locked.status, 429, "{}", locked.body);
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "Retry-After: {retry}");
    assert!(
        locked.json()["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.2")
    );
    // The right key from another address is answered at once.
    let started = Instant::now();
    let answer = publish_with_key("127.0.0.3", &address, "manual-ok", KEY);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(started.elapsed() < Duration::from_secs(2));
    let answer = publish_with_key("127.0.0.1", &address, "manual-ok", KEY);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Counted on /metrics, logged once then per lockout, shown in the page's feed.
    assert!(metric(&running, "hivemind_web_key_failures_total") >= 6);
    assert!(metric(&running, "hivemind_web_key_lockouts_total") >= 1);
    assert!(metric(&running, "hivemind_web_key_throttled_total") >= 190);
    let stderr = running.stderr();
    assert_eq!(
        stderr
            .matches("a wrong [hive] key was sent from 127.0.0.2")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("wrong [hive] keys from 127.0.0.2 so far"),
        "{stderr}"
    );
    let root_log = std::fs::read_to_string(hive.path().join("logs/root.log")).unwrap();
    assert!(root_log.contains("locked out"), "{root_log}");
    let events = events_text(&running, None);
    assert!(
        events.contains("wrong [hive] keys from 127.0.0.2"),
        "{events}"
    );
    assert!(!events.contains(KEY) && !stderr.contains(KEY));
    // Once the lockout is over, the right key works from there again.
    assert!(
        eventually(Duration::from_secs(320), || publish_with_key(
            "127.0.0.2",
            &address,
            "manual-ok",
            KEY
        )
        .status
            == 200),
        "the lockout never ended"
    );
    assert!(eventually(WAIT, || received_from(
        &hive.file("receiver.jsonl"),
        "manual-ok"
    )
    .len()
        == 3));
    assert!(received_from(&hive.file("receiver.jsonl"), "manual-g").is_empty());
    still_ticking(&hive);
}

#[test]
fn removing_the_key_on_loopback_while_it_runs_is_applied_only_with_a_loud_warning() {
    let hive = ticking_hive(&format!("key = \"{KEY}\""));
    let running = hive.run(&[]);
    assert_eq!(running.post("/api/publish/manual-n", "1", &[]).0, 401);
    let config_path = hive.path().join("config/hive.toml");
    let good = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        good.replace(&format!("key = \"{KEY}\"\n"), ""),
    )
    .unwrap();
    let warning = "SECURITY: [hive] key was removed";
    assert!(
        eventually(WAIT, || events_text(&running, None).contains(warning)),
        "the page's feed does not say so:\n{}",
        events_text(&running, None)
    );
    assert!(running.stderr().contains(warning), "{}", running.stderr());
    let root_log = std::fs::read_to_string(hive.path().join("logs/root.log")).unwrap();
    assert!(root_log.contains(warning), "{root_log}");
    // Applied: changes need no key now (what the warning says).
    assert!(eventually(WAIT, || running
        .post("/api/publish/manual-n", "2", &[])
        .0
        == 200));
    assert!(!running.stderr().contains(KEY));
    std::fs::write(&config_path, &good).unwrap();
    assert!(eventually(WAIT, || running
        .post("/api/publish/manual-n", "3", &[])
        .0
        == 401));
    still_ticking(&hive);
}

/// `n` arrays nested in each other around `1`.
fn nested(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

/// A running hive with the oracle node `alfred` (requests `alfred/...`) and `rest` in `[hive]`.
fn oracle_hive(rest: &str) -> (Hive, Running) {
    let hive = Hive::new();
    hive.configure(&format!(
        "{rest}\n\n[nodes.alfred]\nenabled = true\nlibrary = \"oracle\"\n"
    ));
    hive.install("oracle");
    let running = hive.run(&[]);
    let answered = running.wait_for(WAIT, |r| {
        let (status, _) = r.post("/api/request/alfred/count", "null", &[]);
        (status == 200).then_some(())
    });
    assert!(answered.is_some(), "alfred never answered");
    (hive, running)
}

#[test]
fn deep_request_arguments_are_refused_and_an_unreadable_reply_is_an_error_not_null() {
    let (_hive, running) = oracle_hive("");
    let ask = |name: &str, body: &str| {
        let (status, body) = running.post(&format!("/api/request/{name}"), body, &[]);
        let value: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        (status, value)
    };
    let count = |running: &Running| {
        let (_, body) = running.post("/api/request/alfred/count", "null", &[]);
        serde_json::from_str::<Value>(&body).unwrap()["reply"]
            .as_u64()
            .unwrap()
    };
    let before = count(&running);
    // Just over the limit, and the attacker's 100,000 levels: refused before any node.
    for depth in [128, 100_000] {
        let (status, body) = ask("alfred/echo", &nested(depth));
        assert_eq!(status, 400, "depth {depth}: {body}");
        assert_eq!(body["kind"], "invalid_args", "{body}");
        assert!(body["error"].as_str().unwrap().contains("127"), "{body}");
    }
    // The echo never ran for them (count answers itself, so one more).
    assert_eq!(count(&running), before + 1);
    // A deep but reasonable value goes through and comes back whole.
    let (status, body) = ask("alfred/echo", &nested(100));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reply"],
        serde_json::from_str::<Value>(&nested(100)).unwrap()
    );
    // A reply the host cannot read back: 502 of its own kind, never "reply": null.
    let (status, body) = ask("alfred/deep", "200");
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["kind"], "invalid_reply", "{body}");
    assert!(body.get("reply").is_none(), "{body}");
    assert_eq!(body["node"], "alfred", "{body}");
    let (status, body) = running.post("/api/request/alfred/deep?all=true", "200", &[]);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replies"][0]["kind"], "invalid_reply", "{body}");
    assert!(body["replies"][0].get("reply").is_none(), "{body}");
    let (status, body) = ask("alfred/deep", "20");
    assert_eq!(status, 200, "{body}");
    // And the node works on.
    let (status, body) = ask("alfred/echo", "{\"still\": true}");
    assert_eq!(
        (status, &body["reply"]),
        (200, &serde_json::json!({"still": true}))
    );
    assert_eq!(running.node("alfred")["status"], "running");
}

#[test]
fn origins_must_be_exactly_the_hives_own_scheme_host_and_port() {
    let hive = ticking_hive("");
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    let port = address.rsplit(':').next().unwrap().to_owned();
    for origin in [
        format!("https://{address}"),
        format!("http://{address}/"),
        format!("http://{address}/dashboard"),
        format!("HTTP://{address}"),
        format!("http://{address}.evil.example"),
        format!("http://{address}@evil.example"),
        format!("ws://{address}"),
        "http://127.0.0.1".to_owned(),
        format!("http://localhost:{port}"),
        "null".to_owned(),
    ] {
        let answer = raw(
            &address,
            "POST",
            "/api/publish/manual-o",
            &[("Host", &address), ("Origin", &origin)],
            "0",
        );
        assert_eq!(answer.status, 403, "{origin:?}: {}", answer.body);
        assert_eq!(answer.header("connection").as_deref(), Some("close"));
    }
    // The page's own origin, as a browser serialises it, passes.
    let answer = raw(
        &address,
        "POST",
        "/api/publish/manual-o",
        &[("Host", &address), ("Origin", &format!("http://{address}"))],
        "1",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let localhost = format!("localhost:{port}");
    let answer = raw(
        &address,
        "POST",
        "/api/publish/manual-o",
        &[
            ("Host", &localhost),
            ("Origin", &format!("http://{localhost}")),
        ],
        "2",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(eventually(WAIT, || received_from(
        &hive.file("receiver.jsonl"),
        "manual-o"
    ) == [
        serde_json::json!(1),
        serde_json::json!(2)
    ]));
    still_ticking(&hive);
}

#[test]
fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout_not_the_idle_one() {
    let hive = ticking_hive("header_timeout_ms = 1000\nidle_timeout_ms = 30000");
    let running = hive.run(&[]);
    let address = running.address().to_owned();
    let started = Instant::now();
    let mut silent = TcpStream::connect(&address).unwrap();
    let mut partial = TcpStream::connect(&address).unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(10)),
        "a silent connection stayed open"
    );
    let silent_for = started.elapsed();
    assert!(
        closed_by_server(&mut partial, Duration::from_secs(10)),
        "a half-sent head stayed open"
    );
    let partial_for = started.elapsed();
    for (what, took) in [("silent", silent_for), ("partial", partial_for)] {
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(8)).contains(&took),
            "the {what} connection was closed after {took:?}, not about 1 s"
        );
    }
    // A prompt client is served on its own connection, and then kept for the idle timeout.
    let mut prompt = TcpStream::connect(&address).unwrap();
    write!(prompt, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    prompt.set_read_timeout(Some(WAIT)).unwrap();
    let mut first = [0u8; 12];
    prompt.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(healthy(TcpStream::connect(&address).unwrap(), &address));
    still_ticking(&hive);
}

#[test]
fn slow_requests_from_one_address_leave_room_for_the_page_healthz_and_metrics() {
    let (_hive, running) =
        oracle_hive("max_requests_per_address = 4\nmax_connections_per_address = 64");
    let address = running.address().to_owned();
    let (sender, outcomes) = std::sync::mpsc::channel();
    let askers: Vec<_> = (0..24)
        .map(|_| {
            let address = address.clone();
            let sender = sender.clone();
            std::thread::spawn(move || {
                let body = "{\"ms\": 3000}";
                let answer = raw(
                    &address,
                    "POST",
                    "/api/request/alfred/sleep?timeout_ms=3500",
                    &[("Host", &address)],
                    body,
                );
                let _ = sender.send(answer);
            })
        })
        .collect();
    drop(sender);
    // The first refusal shows the cap is reached; the others are still in hand.
    let first = outcomes
        .recv_timeout(WAIT)
        .expect("no request was answered");
    assert_eq!(first.status, 429, "{} {}", first.head, first.body);
    let error = first.json();
    assert_eq!(
        error["setting"], "[hive] max_requests_per_address",
        "{error}"
    );
    assert!(
        error["error"].as_str().unwrap().contains("4 API requests"),
        "{error}"
    );
    // Meanwhile the page, /healthz and /metrics answer, from the same address.
    let page = raw(
        &address,
        "GET",
        "/",
        &[("Host", &address), ("Accept", "text/html")],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(healthy(TcpStream::connect(&address).unwrap(), &address));
    assert!(metric(&running, "hivemind_web_requests_in_hand") >= 1);
    assert!(metric(&running, "hivemind_web_requests_refused_total") >= 1);
    let mut answers = vec![first];
    answers.extend(outcomes.iter());
    for asker in askers {
        asker.join().unwrap();
    }
    assert_eq!(answers.len(), 24);
    let refused = answers.iter().filter(|a| a.status == 429).count();
    for answer in &answers {
        assert!(
            matches!(answer.status, 200 | 429 | 504),
            "{} {}",
            answer.head,
            answer.body
        );
    }
    assert!((1..24).contains(&refused), "{refused} of 24 refused");
    // Once they are answered, the address may ask again.
    assert!(eventually(WAIT, || running
        .post("/api/request/alfred/count", "null", &[])
        .0
        == 200));
}

/// Writes `request` on `stream` and reads the whole answer, until the server closes.
fn send_and_read(stream: &mut std::net::TcpStream, request: &str) -> Answer {
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}
