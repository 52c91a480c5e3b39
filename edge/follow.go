package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/api/routing"
)

// The edge follows the server's API with its own edge token: the route
// feed in, reports out. Neither is needed to serve requests: without the
// server the edge serves the table it kept.

const (
	feedIdle       = 45 * time.Second // the server pings every 15 s
	feedBackoffMin = 100 * time.Millisecond
	feedBackoffMax = 5 * time.Second
	reportTimeout  = 10 * time.Second
	fullCertReport = 5 * time.Minute // every status again, in case the server lost some
)

// errRefused: the server refused the edge's token; retrying fast would
// only flood its log.
var errRefused = errors.New("the server refused the edge token")

// follow keeps the route feed connected until ctx ends.
func (e *Edge) follow(ctx context.Context) {
	backoff := feedBackoffMin
	for ctx.Err() == nil {
		connected := time.Now()
		err := e.followOnce(ctx)
		e.m.feedConnected.Set(0)
		if ctx.Err() != nil {
			return
		}
		if time.Since(connected) > time.Minute {
			backoff = feedBackoffMin
		}
		wait := backoff
		if errors.Is(err, errRefused) {
			wait = 30 * time.Second
		}
		e.log.Warn("route feed ended; serving the kept routes meanwhile", zap.Error(err), zap.Duration("retryIn", wait))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, feedBackoffMax)
	}
}

func (e *Edge) followOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.opts.Server+"/api/v1/edge/routes?watch=true", nil)
	if err != nil {
		return fmt.Errorf("route feed: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+e.opts.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("route feed: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("%w (%s): %s", errRefused, resp.Status, strings.TrimSpace(string(body)))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("route feed: %s", resp.Status)
	}
	e.m.feedConnected.Set(1)
	e.log.Info("following the server's routes", zap.String("server", e.opts.Server))
	// A silent connection is a dead one: the server pings.
	idle := time.AfterFunc(feedIdle, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	var event string
	var data bytes.Buffer
	for sc.Scan() {
		idle.Reset(feedIdle)
		line := sc.Text()
		switch {
		case line == "":
			if event == "routes" {
				var t routing.Table
				if err := json.Unmarshal(data.Bytes(), &t); err != nil || !t.Valid() {
					return fmt.Errorf("route feed: a table that does not decode or match its version")
				}
				if err := e.apply(t, true); err != nil {
					return err
				}
			} else if event == "error" {
				e.log.Warn("the server ended the route feed", zap.String("reason", data.String()))
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data.WriteString(strings.TrimPrefix(line, "data: "))
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("route feed: %w", err)
	}
	if ctx.Err() != nil {
		return errors.New("route feed: no data for 45s")
	}
	return errors.New("route feed: the server closed it")
}

// edgeReport is the body of PUT /api/v1/edge/reports/{id}.
type edgeReport struct {
	Name         string              `json:"name"`
	Routes       string              `json:"routes,omitempty"`
	Active       []string            `json:"active"`
	Draining     []string            `json:"draining"`
	Certificates []certificateReport `json:"certificates,omitempty"`
	Events       []EdgeEvent         `json:"events,omitempty"`
}

type certificateReport struct {
	Host   string                `json:"host"`
	Status api.CertificateStatus `json:"status"`
}

// report sends reports: at once after a change (new routes, a replica
// drained, a certificate event), else every ReportInterval.
func (e *Edge) report(ctx context.Context) {
	tick := time.NewTicker(e.opts.ReportInterval)
	defer tick.Stop()
	sent := map[string]api.CertificateStatus{}
	lastFull := time.Time{}
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.pokes:
		case <-tick.C:
		}
		st := e.state.Load()
		r := edgeReport{Name: e.opts.Name, Routes: st.table.Version, Active: st.activeIPs(), Draining: e.draining(st)}
		slices.Sort(r.Draining)
		if r.Draining == nil {
			r.Draining = []string{}
		}
		full := time.Since(lastFull) > fullCertReport
		statuses := e.certs.statuses()
		for h, s := range statuses {
			if prev, ok := sent[h]; full || !ok || !sameStatus(prev, s) {
				r.Certificates = append(r.Certificates, certificateReport{Host: h, Status: s})
			}
		}
		slices.SortFunc(r.Certificates, func(a, b certificateReport) int { return strings.Compare(a.Host, b.Host) })
		r.Events = e.certs.takeEvents()
		if err := e.sendReport(ctx, r); err != nil {
			e.certs.giveBack(r.Events)
			failures++
			if failures == 1 || failures%12 == 0 {
				e.log.Warn("report to the server failed", zap.Error(err), zap.Int("failures", failures))
			}
			continue
		}
		failures = 0
		for _, c := range r.Certificates {
			sent[c.Host] = c.Status
		}
		for h := range sent {
			if _, ok := statuses[h]; !ok {
				delete(sent, h)
			}
		}
		if full {
			lastFull = time.Now()
		}
	}
}

func sameStatus(a, b api.CertificateStatus) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func (e *Edge) sendReport(ctx context.Context, r edgeReport) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, e.opts.Server+"/api/v1/edge/reports/"+e.opts.ID, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.opts.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("report: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// poke asks for a report soon.
func (e *Edge) poke() {
	select {
	case e.pokes <- struct{}{}:
	default:
	}
}
