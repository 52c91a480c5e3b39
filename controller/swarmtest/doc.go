// Package swarmtest holds the end-to-end tests of the Swarm runtime
// (reconcile/swarm): the conformance suite and the Swarm-only checks. They
// live apart because they put the local engine in swarm mode for their
// run (a single-node swarm advertised on 127.0.0.1, left again at the end),
// holding the engine lock exclusively (testenv.LockEngine): no other test
// process uses the engine while its mode changes.
package swarmtest
