// Package reconcile holds the convergence logic: desired resources plus
// observed Docker objects go into a pure planner that returns a plan of
// operations, which an executor runs against a small Runtime interface.
// Runtimes live in sub-packages (reconcile/docker, reconcile/memruntime);
// this package imports no engine SDK.
package reconcile
