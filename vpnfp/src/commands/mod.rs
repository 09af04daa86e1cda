//! One module per subcommand of the `vpnfp` binary.

pub mod replay;
pub mod report;
pub mod run;
