//! The `hm` host: loads node libraries into a hive and carries their messages.

pub mod scaffold;
