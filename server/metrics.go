package server

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metrics records through OpenTelemetry, exported by its Prometheus
// exporter onto a registry private to the server (tests build many servers).
type metrics struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider

	requests     metric.Int64Counter
	duration     metric.Float64Histogram
	ttft, tpot   metric.Float64Histogram
	e2e          metric.Float64Histogram
	promptTokens metric.Int64Counter
	genTokens    metric.Int64Counter
}

// latencyBuckets suit CPU inference: from a millisecond per token to
// minutes per request.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics(s *Server) (*metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, fmt.Errorf("creating the Prometheus exporter: %w", err)
	}
	m := &metrics{reg: reg, provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))}
	meter := m.provider.Meter("github.com/loraplex/loraplex/server")
	hist := func(name, desc string) metric.Float64Histogram {
		h, e := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(latencyBuckets...))
		err = joinErr(err, e)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, e := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		err = joinErr(err, e)
		return c
	}
	m.requests = counter("loraplex.http.requests", "{request}", "HTTP requests by route, status and adapter.")
	m.duration = hist("loraplex.http.request.duration", "HTTP request duration by route.")
	m.ttft = hist("loraplex.time_to_first_token", "Time from request arrival to the first generated token, per sequence.")
	m.tpot = hist("loraplex.time_per_output_token", "Mean time between generated tokens after the first, per sequence.")
	m.e2e = hist("loraplex.e2e_request_latency", "Time from arrival to the last token of a generation request.")
	m.promptTokens = counter("loraplex.prompt_tokens", "{token}", "Prompt tokens processed, by adapter.")
	m.genTokens = counter("loraplex.generation_tokens", "{token}", "Tokens generated, by adapter.")

	gauge := func(name, unit, desc string, f func() float64) {
		_, e := meter.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc),
			metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				o.Observe(f())
				return nil
			}))
		err = joinErr(err, e)
	}
	gauge("loraplex.scheduler.waiting", "{sequence}", "Sequences queued for admission.", func() float64 { return float64(s.eng.Stats().Waiting) })
	gauge("loraplex.scheduler.running", "{sequence}", "Sequences in the running batch.", func() float64 { return float64(s.eng.Stats().Running) })
	gauge("loraplex.kv_cache.usage", "1", "Fraction of KV-cache blocks in use.", func() float64 { return s.eng.Stats().KVCacheUsage })
	gauge("loraplex.adapters.resident", "{adapter}", "Adapters resident in memory.", func() float64 { return float64(s.ads.Stats().Resident) })
	gauge("loraplex.adapters.stored", "{adapter}", "Adapters in the store.", func() float64 { return float64(s.ads.Stats().Total) })
	gauge("loraplex.adapters.resident_size", "By", "Bytes of resident adapter weights.", func() float64 { return float64(s.ads.Stats().ResidentBytes) })
	gauge("loraplex.adapters.budget_size", "By", "Byte budget for resident adapters.", func() float64 { return float64(s.ads.Stats().BudgetBytes) })

	regCounter := func(name, desc string, f func(AdapterStats) int64) {
		_, e := meter.Int64ObservableCounter(name, metric.WithUnit("{event}"), metric.WithDescription(desc),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(f(s.ads.Stats()))
				return nil
			}))
		err = joinErr(err, e)
	}
	regCounter("loraplex.adapters.hits", "Acquisitions that found the adapter resident.", func(a AdapterStats) int64 { return a.Hits })
	regCounter("loraplex.adapters.misses", "Acquisitions that had to load the adapter.", func(a AdapterStats) int64 { return a.Misses })
	regCounter("loraplex.adapters.loads", "Adapters loaded from disk.", func(a AdapterStats) int64 { return a.Loads })
	regCounter("loraplex.adapters.evictions", "Adapters evicted from memory.", func(a AdapterStats) int64 { return a.Evictions })
	regCounter("loraplex.adapters.load_errors", "Adapter loads that failed.", func(a AdapterStats) int64 { return a.LoadErrors })
	if err != nil {
		return nil, fmt.Errorf("creating metric instruments: %w", err)
	}
	err = joinErr(reg.Register(&vllmCollector{s: s}), reg.Register(collectors.NewGoCollector()))
	err = joinErr(err, reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})))
	if err != nil {
		return nil, fmt.Errorf("registering collectors: %w", err)
	}
	return m, nil
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (m *metrics) shutdown(ctx context.Context) error { return m.provider.Shutdown(ctx) }

// request records one HTTP request. The adapter label is what the handler
// resolved (see setAdapter); routes without one get "".
func (m *metrics) request(ctx context.Context, c echo.Context, status int, d time.Duration) {
	route := c.Path()
	if route == "" {
		route = "unmatched" // never a raw URL: unbounded label values
	}
	adapter, _ := c.Get(adapterKey).(string)
	attrs := metric.WithAttributes(attribute.String("route", route), attribute.String("method", c.Request().Method),
		attribute.Int("status", status), attribute.String("adapter", adapter))
	ctx = context.WithoutCancel(ctx)
	m.requests.Add(ctx, 1, attrs)
	m.duration.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("route", route)))
}

// sequence records one finished generated sequence.
func (m *metrics) sequence(adapter string, prompt, generated int, ttft, tpot time.Duration) {
	ctx := context.Background()
	attrs := metric.WithAttributes(attribute.String("adapter", adapter))
	m.promptTokens.Add(ctx, int64(prompt), attrs)
	m.genTokens.Add(ctx, int64(generated), attrs)
	if generated > 0 {
		m.ttft.Record(ctx, ttft.Seconds(), attrs)
	}
	if generated > 1 {
		m.tpot.Record(ctx, tpot.Seconds(), attrs)
	}
}

func (m *metrics) endToEnd(adapter string, d time.Duration) {
	m.e2e.Record(context.Background(), d.Seconds(), metric.WithAttributes(attribute.String("adapter", adapter)))
}

const adapterKey = "loraplex.adapter"

func (s *Server) metricsRoutes(r *router) {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: promLogger{s}})
	r.Public("GET", "/metrics", echo.WrapHandler(h))
}

type promLogger struct{ s *Server }

func (p promLogger) Println(v ...any) { p.s.log.Warn("metrics exposition", "err", fmt.Sprint(v...)) }

// vllmCollector exposes the four gauges the Gateway API Inference
// Extension's endpoint picker scrapes, under vLLM's exact names. They go
// through client_golang rather than OpenTelemetry because ':' is not legal
// in an OpenTelemetry instrument name (the SDK rejects it and the exporter
// would escape it to '_'), so OTel cannot produce these names.
type vllmCollector struct{ s *Server }

var (
	vllmWaiting = prometheus.NewDesc("vllm:num_requests_waiting", "Requests waiting to be admitted.", nil, nil)
	vllmRunning = prometheus.NewDesc("vllm:num_requests_running", "Requests in the running batch.", nil, nil)
	vllmKV      = prometheus.NewDesc("vllm:kv_cache_usage_perc", "KV-cache usage, 0..1 (1 = 100%).", nil, nil)
	vllmLora    = prometheus.NewDesc("vllm:lora_requests_info", "Adapters serving and waiting; the value is the time of the last change.",
		[]string{"max_lora", "running_lora_adapters", "waiting_lora_adapters"}, nil)
)

func (v *vllmCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- vllmWaiting
	ch <- vllmRunning
	ch <- vllmKV
	ch <- vllmLora
}

func (v *vllmCollector) Collect(ch chan<- prometheus.Metric) {
	st := v.s.eng.Stats()
	ch <- prometheus.MustNewConstMetric(vllmWaiting, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(vllmRunning, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(vllmKV, prometheus.GaugeValue, st.KVCacheUsage)
	running, waiting, at := v.s.loras.snapshot()
	ch <- prometheus.MustNewConstMetric(vllmLora, prometheus.GaugeValue, float64(at.UnixNano())/1e9,
		strconv.Itoa(st.MaxAdapters), running, waiting)
}

// loraTracker knows which adapters have requests waiting for their first
// token and which are generating, for vllm:lora_requests_info. The server
// tracks this itself: the engine sees adapter weights, not names.
type loraTracker struct {
	mu      sync.Mutex
	waiting map[string]int
	running map[string]int
	changed time.Time
}

func newLoraTracker() *loraTracker {
	return &loraTracker{waiting: map[string]int{}, running: map[string]int{}, changed: time.Now()}
}

func (t *loraTracker) update(name string, f func()) {
	if name == "" {
		return
	}
	t.mu.Lock()
	f()
	t.changed = time.Now()
	t.mu.Unlock()
}

func (t *loraTracker) wait(name string) { t.update(name, func() { t.waiting[name]++ }) }

func (t *loraTracker) run(name string) {
	t.update(name, func() { dec(t.waiting, name); t.running[name]++ })
}

// end is called once per sequence; started says whether run was called.
func (t *loraTracker) end(name string, started bool) {
	t.update(name, func() {
		if started {
			dec(t.running, name)
		} else {
			dec(t.waiting, name)
		}
	})
}

func dec(m map[string]int, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

func (t *loraTracker) snapshot() (running, waiting string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return joinKeys(t.running), joinKeys(t.waiting), t.changed
}

func joinKeys(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}
