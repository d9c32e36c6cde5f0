//! The probe node built a second time: its records say `"build": "probe2"`, so a reload test
//! can tell which version of the code handled each message.

#[path = "../../probe/src/lib.rs"]
mod probe;
