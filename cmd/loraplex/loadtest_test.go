package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/loadtest"
)

// startTiny runs the real server, wired as serve wires it, on a random tiny
// model and a loopback port.
func startTiny(t *testing.T, adminKey string) *running {
	t.Helper()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "tiny")
	if err := synth.Write(dir, synth.Tiny, 5, "BF16"); err != nil {
		t.Fatal(err)
	}
	var f serveFlags
	fs := newFlags("serve")
	f.base.bind(fs, "")
	f.bind(fs)
	if err := fs.Parse([]string{"--model", dir, "--home", filepath.Join(tmp, "home"), "--host", "127.0.0.1", "--port", "0",
		"--threads", "2", "--api-key", "", "--admin-key", adminKey}); err != nil {
		t.Fatal(err)
	}
	r, err := startServer(context.Background(), &f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.shutdown(); err != nil {
			t.Error(err)
		}
		r.close()
	})
	return r
}

// serverCounts scrapes the server's own Prometheus metrics: sequences that
// generated tokens (the count of the time-to-first-token histogram) and
// tokens generated, per adapter. Both are recorded before the stream's last
// chunk is written, so a client that has read [DONE] finds them complete;
// the HTTP request counter is recorded after the response and may lag.
func serverCounts(t *testing.T, url string) (requests, tokens map[string]int) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	requests, tokens = map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		labels, value, _ := strings.Cut(rest, "} ")
		v, _ := strconv.ParseFloat(value, 64)
		adapter := label(labels, "adapter")
		switch {
		case strings.HasPrefix(name, "loraplex_generation_tokens"):
			tokens[adapter] += int(v)
		case strings.HasPrefix(name, "loraplex_time_to_first_token") && strings.HasSuffix(name, "_count"):
			requests[adapter] += int(v)
		}
	}
	return requests, tokens
}

func label(labels, key string) string {
	for _, kv := range strings.Split(labels, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// The load generator against a real server: it creates its adapters, and
// what it reports matches what the server itself counted.
func TestLoadtestAgainstServer(t *testing.T) {
	r := startTiny(t, "adm")
	jsonPath := filepath.Join(t.TempDir(), "rep.json")
	out, err := run(t, "loadtest", "--url", r.url, "--adapters", "3", "--base-model", r.name, "--create-adapters",
		"--adapter-rank", "4", "--api-key", "adm", "--requests", "16", "--concurrency", "4", "--prompt-tokens", "4-12",
		"--output-tokens", "3-6", "--ignore-eos", "--seed", "9", "--json", jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := loadtest.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 16 || rep.Succeeded != 16 || rep.Failed != 0 || len(rep.PerAdapter) != 4 {
		t.Fatalf("report: %d requests, %d ok, %d failed, %d names\n%s", rep.Requests, rep.Succeeded, rep.Failed, len(rep.PerAdapter), out)
	}
	if !strings.Contains(out, "16 requests, 16 ok, 0 failed") {
		t.Errorf("table lacks the totals:\n%s", out)
	}
	reqs, toks := serverCounts(t, r.url)
	var sum int64
	for name, a := range rep.PerAdapter {
		sum += a.TokensOut
		label := name
		if name == r.name {
			label = "" // the server labels base-model requests with no adapter
		}
		if reqs[label] != a.Requests || int64(toks[label]) != a.TokensOut {
			t.Errorf("%s: reported %d requests, %d tokens; server counted %d, %d", name, a.Requests, a.TokensOut, reqs[label], toks[label])
		}
		// ignore_eos: every answer has its max_tokens, between 3 and 6.
		if a.TokensOut < 3*int64(a.Requests) || a.TokensOut > 6*int64(a.Requests) {
			t.Errorf("%s: %d tokens for %d requests of 3-6", name, a.TokensOut, a.Requests)
		}
	}
	if sum != rep.TokensOut {
		t.Errorf("per-adapter tokens %d, total %d", sum, rep.TokensOut)
	}
	// The created adapters are real: the store lists them.
	req, _ := http.NewRequest(http.MethodGet, r.url+"/v1/adapters", nil)
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Data) != 3 {
		t.Errorf("GET /v1/adapters: %v, %+v", err, list.Data)
	}
	// A second run with the same seed reuses the adapters and sends the
	// same sequence: the same tokens per adapter.
	jsonPath2 := filepath.Join(t.TempDir(), "rep2.json")
	if _, err := run(t, "loadtest", "--url", r.url, "--adapters", "3", "--base-model", r.name, "--create-adapters",
		"--api-key", "adm", "--requests", "16", "--concurrency", "2", "--prompt-tokens", "4-12",
		"--output-tokens", "3-6", "--ignore-eos", "--seed", "9", "--json", jsonPath2); err != nil {
		t.Fatal(err)
	}
	f2, _ := os.Open(jsonPath2)
	defer f2.Close()
	rep2, err := loadtest.ReadJSON(f2)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range rep.PerAdapter {
		if b := rep2.PerAdapter[name]; b == nil || b.Requests != a.Requests || b.TokensOut != a.TokensOut {
			t.Errorf("%s: second run %+v, first %+v", name, b, a)
		}
	}
	// The saved reports compare: same error rate, both zero.
	cmp, err := run(t, "loadtest", "--compare", jsonPath, jsonPath2)
	if err != nil || !strings.Contains(cmp, "output tok/s") || !regexp.MustCompile(`error rate +0\.00 +0\.00 +-`).MatchString(cmp) {
		t.Errorf("compare: %v\n%s", err, cmp)
	}
}

// Bad input is counted and reported; the run still ends with its report.
func TestLoadtestBadInput(t *testing.T) {
	r := startTiny(t, "")
	out, err := run(t, "loadtest", "--url", r.url, "--adapter-names", "no-such-adapter", "--requests", "5",
		"--concurrency", "2", "--prompt-tokens", "4", "--output-tokens", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "5 requests, 0 ok, 5 failed") || !strings.Contains(out, "http_404 5") {
		t.Errorf("wrong model name:\n%s", out)
	}
	out, err = run(t, "loadtest", "--url", "http://127.0.0.1:1", "--base-model", "x", "--requests", "3", "--concurrency", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "3 requests, 0 ok, 3 failed") || !strings.Contains(out, "connect 3") {
		t.Errorf("unreachable server:\n%s", out)
	}
	// Adapters that cannot be created fail the run before any request.
	if _, err := run(t, "loadtest", "--url", "http://127.0.0.1:1", "--adapters", "1", "--create-adapters", "--requests", "1"); err == nil ||
		!strings.Contains(err.Error(), "reachable") {
		t.Errorf("creating on an unreachable server: %v", err)
	}
}
