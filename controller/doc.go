// Package controller is the machinery around reconciliation: the change
// feeds (the store's watch and the Docker events stream), the workqueue and
// its workers, periodic resync, leader election, and the metrics collector.
// It drives package reconcile and reads and writes package store.
package controller
