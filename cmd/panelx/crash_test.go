package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestKill9DuringWritesLosesNothing: the server on its embedded store is
// killed with SIGKILL while clients write; it starts again on the same data
// directory, and every write it acknowledged is there.
func TestKill9DuringWritesLosesNothing(t *testing.T) {
	bin := buildPanelx(t)
	dir := t.TempDir()
	env := []string{"PANELX_DATABASE_URL=", "PANELX_DATA_DIR=" + dir, "PANELX_CONTROLLER=false", "PANELX_CONTAINER_METRICS=false"}
	cmd, base, _ := startServer(t, bin, env...)
	tokenData, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenData))
	post := func(base, path string, body any) (int, error) {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post(base, "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": "crash"}}); err != nil || code != 201 {
		t.Fatalf("create project: %d %v", code, err)
	}

	var mu sync.Mutex
	var acked []string
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("svc-%d", n.Add(1))
				code, err := post(base, "/api/v1/projects/crash/services",
					map[string]any{"metadata": map[string]any{"name": name}, "spec": map[string]any{"image": "nginx:1.27"}})
				if err != nil {
					return // the server is gone
				}
				if code == http.StatusCreated {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		count := len(acked)
		mu.Unlock()
		if count >= 150 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	_ = cmd.Wait()
	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()

	// The same data directory: the kernel dropped the lock with the process.
	_, base2, logs := startServer(t, bin, env...)
	req, _ := http.NewRequest("GET", base2+"/api/v1/projects/crash/services?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("list after restart: %v\n%s", err, logs)
	}
	have := map[string]bool{}
	for _, it := range list.Items {
		have[it.Metadata.Name] = true
	}
	for _, name := range want {
		if !have[name] {
			t.Errorf("acknowledged write %s is lost", name)
		}
	}
	t.Logf("%d writes acknowledged before SIGKILL, %d services after restart", len(want), len(have))
}
