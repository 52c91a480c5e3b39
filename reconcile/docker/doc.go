// Package docker is the single-engine runtime: reconcile.Runtime over the
// Docker Engine API, one container per replica, the planner deciding every
// step. It is the only part of the reconciler that speaks Docker's types;
// package reconcile stays free of them (internal/layering checks).
package docker
