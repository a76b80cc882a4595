package server

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	resp, b := h.do(http.MethodGet, "/metrics", "")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return string(b)
}

// TestMetricsExposition checks the exposition text literally: gateways match
// these names and labels byte for byte.
func TestMetricsExposition(t *testing.T) {
	h := start(t, nil)
	for range 2 {
		h.post("/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}]}`)
	}
	h.post("/v1/completions", `{"model":"base","prompt":"hi","max_tokens":4}`)
	h.post("/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`)
	h.post("/no/such/route/7f3a", `{}`)
	text := scrape(t, h)
	for _, want := range []string{
		"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 2\n",
		"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 0\n",
		"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc 0.25\n",
		"# TYPE vllm:lora_requests_info gauge\n" + `vllm:lora_requests_info{max_lora="4",running_lora_adapters="",waiting_lora_adapters=""} `,
		`loraplex_http_requests_total{adapter="alpha",method="POST",route="/v1/chat/completions",status="200"} 2`,
		`loraplex_http_requests_total{adapter="",method="POST",route="/v1/chat/completions",status="404"} 1`,
		// Unknown paths share one label value: raw URLs would be unbounded.
		`loraplex_http_requests_total{adapter="",method="POST",route="unmatched",status="404"} 1`,
		`loraplex_generation_tokens_total{adapter="alpha"} 40`,
		`loraplex_generation_tokens_total{adapter=""} 4`,
		`loraplex_prompt_tokens_total{adapter=""} 3`,
		`loraplex_time_to_first_token_seconds_count{adapter="alpha"} 2`,
		`loraplex_time_per_output_token_seconds_bucket{adapter="alpha",le="+Inf"} 2`,
		`loraplex_e2e_request_latency_seconds_count{adapter=""} 1`,
		`loraplex_http_request_duration_seconds_count{route="/v1/completions"} 1`,
		"loraplex_scheduler_waiting 2\n",
		"loraplex_kv_cache_usage_ratio 0.25\n",
		"loraplex_adapters_hits_total 2\n",
		"loraplex_adapters_evictions_total 1\n",
		"loraplex_adapters_resident_size_bytes 1024\n",
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestLoraRequestsInfoFollowsRequests(t *testing.T) {
	h := start(t, func(_ *Config, e *fakeEngine, _ *Server) { e.gate = make(chan struct{}) })
	info := regexp.MustCompile(`vllm:lora_requests_info\{max_lora="4",running_lora_adapters="([^"]*)",waiting_lora_adapters="([^"]*)"\} \d`)
	state := func() (string, string) {
		m := info.FindStringSubmatch(scrape(t, h))
		if m == nil {
			t.Fatal("no lora_requests_info line")
		}
		return m[1], m[2]
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := h.openStream(ctx, "/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	defer a.close()
	b := h.openStream(ctx, "/v1/chat/completions", `{"model":"org/gamma","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	defer b.close()
	a.next()
	b.next()
	if run, wait := state(); run != "" || wait != "alpha,org/gamma" {
		t.Errorf("before any token: running %q waiting %q", run, wait)
	}
	h.eng.gate <- struct{}{}
	h.eng.gate <- struct{}{}
	a.next()
	b.next()
	if run, wait := state(); run != "alpha,org/gamma" || wait != "" {
		t.Errorf("generating: running %q waiting %q", run, wait)
	}
	cancel()
	a.close()
	b.close()
	h.eng.wg.Wait()
	h.srv.workers.Wait()
	if run, wait := state(); run != "" || wait != "" {
		t.Errorf("after: running %q waiting %q", run, wait)
	}
}
