//! runnerform's integration tests: one binary that drives the real executable.

mod common;
mod python;
mod test_ansible;
mod test_cli;
mod test_contract;
mod test_examples;
mod test_fixtures;
mod test_fleet;
mod test_import;
mod test_local;
mod test_malformed;
mod test_online;
mod test_pace;
mod test_props;
mod test_reference;
mod test_remote;
mod test_secrets;
mod test_service;
mod test_sim;
mod test_sim_load;
mod test_sim_python;
mod test_validate;
