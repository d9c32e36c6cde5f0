//! The `hm` command line as a user meets it: help, and errors that say what to do.

use hivemind_tests::{Hive, hm_output};

#[test]
fn help_lists_every_command_with_its_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let output = hm_output(dir.path(), &["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["new", "create_node", "dev", "run"] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
    let output = hm_output(dir.path(), &["new", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("--dir") && help.contains("--verbose"),
        "{help}"
    );
    let output = hm_output(dir.path(), &["dev", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("--node") && help.contains("--verbose"),
        "{help}"
    );
}

#[test]
fn new_refuses_an_existing_hive_and_names_with_spaces_work() {
    let dir = tempfile::tempdir().unwrap();
    let first = hm_output(dir.path(), &["new", "my hive-1"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("New hive at:") && stdout.contains("my hive-1"),
        "{stdout}"
    );
    assert!(dir.path().join("my hive-1/config/hive.toml").is_file());
    let again = hm_output(dir.path(), &["new", "my hive-1"]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("already exists"),
        "{stderr}"
    );
}

#[test]
fn create_node_outside_a_hive_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = hm_output(dir.path(), &["create_node", "batman"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("config/hive.toml") && stderr.contains("hm new"),
        "{stderr}"
    );
}

#[test]
fn create_node_works_from_anywhere_inside_the_hive() {
    let dir = tempfile::tempdir().unwrap();
    assert!(hm_output(dir.path(), &["new", "gotham"]).status.success());
    let deep = dir.path().join("gotham/static");
    let output = hm_output(&deep, &["create_node", "BatSignal"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lib =
        std::fs::read_to_string(dir.path().join("gotham/nodes/batsignal/src/lib.rs")).unwrap();
    assert!(lib.contains("pub struct BatSignal"), "{lib}");
    let config = std::fs::read_to_string(dir.path().join("gotham/config/hive.toml")).unwrap();
    assert!(
        config.contains("[nodes.batsignal]\nenabled = false"),
        "{config}"
    );
    let again = hm_output(&deep, &["create_node", "batsignal"]);
    assert!(!again.status.success());
}

#[test]
fn running_an_unknown_node_lists_the_known_ones() {
    let hive = Hive::new();
    hive.configure("[nodes.batman]\nenabled = false\n");
    let output = hm_output(hive.path(), &["run", "-n", "joker"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no node named `joker`") && stderr.contains("batman"),
        "{stderr}"
    );
}

#[test]
fn list_and_send_with_a_broken_config_say_it_is_broken_and_where() {
    let hive = Hive::new();
    std::fs::write(
        hive.path().join("config/hive.toml"),
        "[hive]\nname = \"test-hive\"\nport = \"nine\"\n",
    )
    .unwrap();
    for args in [&["list"][..], &["send", "bat-signal-main", "1"][..]] {
        let output = hm_output(hive.path(), args);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("its config is broken")
                && stderr.contains("config/hive.toml")
                && stderr.contains("line 3"),
            "hm {}: {stderr}",
            args[0]
        );
        assert!(
            !stderr.contains("run this inside the hive's folder"),
            "we are inside it: {stderr}"
        );
    }
}

#[test]
fn a_hive_with_every_node_disabled_names_them_and_how_to_enable_them() {
    let hive = Hive::new();
    hive.configure("[nodes.batman]\nenabled = false\n\n[nodes.robin]\nenabled = false\n");
    let running = hive.run(&[]);
    let stderr = running.stderr();
    assert!(
        stderr.contains("no node is running: `batman`, `robin` are disabled")
            && stderr.contains("hm enable NAME"),
        "{stderr}"
    );
    let (status, _, _) = running.quit();
    assert!(status.success());
}
