//go:build !linux

package pgserver

import "syscall"

func setPdeathsig(*syscall.SysProcAttr) {}

// descendants is unknown without /proc: a killed postmaster's children
// notice its death and exit by themselves.
func descendants(int) []int { return nil }

func processesIn(string) []int { return nil }

func running(pid int) bool { return syscall.Kill(pid, 0) == nil }

func removeShm(string) error { return nil }
