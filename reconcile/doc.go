// Package reconcile holds the convergence logic: desired resources plus
// observed Docker objects go into a pure planner that returns a plan of
// operations, which an executor runs against a small Runtime interface.
// The Docker implementation of Runtime lives here too.
package reconcile
