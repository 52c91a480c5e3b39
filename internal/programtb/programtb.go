// Package programtb lets benchmark programs (bench/…) use the helpers of
// internal/testimage and internal/testenv, which take a testing.TB.
package programtb

import (
	"fmt"
	"log"
	"slices"
	"sync"
	"testing"
)

// TB lets a program use internal/testimage, whose helpers take a
// testing.TB although they only call Helper, Fatalf, Logf and Cleanup. A
// Fatalf panics with its message; the deferred cleanup in run still runs
// while the panic unwinds. The embedded testing.TB is nil: it only makes
// the type satisfy the interface, and any other method would panic.
type TB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
}

func (p *TB) Helper()      {}
func (p *TB) Name() string { return "bench" }

func (p *TB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (p *TB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (p *TB) Errorf(format string, args ...any) { log.Printf("error: "+format, args...) }
func (p *TB) Logf(format string, args ...any)   { log.Printf(format, args...) }

func (p *TB) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// RunCleanups runs the registered cleanups, last first, as testing does.
func (p *TB) RunCleanups() {
	p.mu.Lock()
	fs := slices.Clone(p.cleanups)
	p.cleanups = nil
	p.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}
