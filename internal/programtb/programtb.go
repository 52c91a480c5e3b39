package main

import (
	"fmt"
	"log"
	"slices"
	"sync"
	"testing"
)

// programTB lets this program use internal/testimage, whose helpers take a
// testing.TB although they only call Helper, Fatalf, Logf and Cleanup. A
// Fatalf panics with its message; the deferred cleanup in run still runs
// while the panic unwinds. The embedded testing.TB is nil: it only makes
// the type satisfy the interface, and any other method would panic.
type programTB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
}

func (p *programTB) Helper()      {}
func (p *programTB) Name() string { return "bench-collector" }

func (p *programTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (p *programTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (p *programTB) Errorf(format string, args ...any) { log.Printf("error: "+format, args...) }
func (p *programTB) Logf(format string, args ...any)   { log.Printf(format, args...) }

func (p *programTB) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// runCleanups runs the registered cleanups, last first, as testing does.
func (p *programTB) runCleanups() {
	p.mu.Lock()
	fs := slices.Clone(p.cleanups)
	p.cleanups = nil
	p.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}
