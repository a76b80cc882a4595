package loadtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Message is one chat message of a prompt.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Prompt is one entry of a prompts file: either a completion prompt or chat
// messages, optionally with its own output length.
type Prompt struct {
	Prompt    string    `json:"prompt,omitempty"`
	Messages  []Message `json:"messages,omitempty"`
	MaxTokens int       `json:"max_tokens,omitempty"`
}

// LoadPrompts reads a JSONL file with one object per line:
// {"prompt": "..."} or {"messages": [{"role": "user", "content": "..."}]},
// each with an optional "max_tokens". Blank lines are skipped.
func LoadPrompts(path string) ([]Prompt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	defer f.Close()
	var out []Prompt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // prompts can be long
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var p Prompt
		if err := json.Unmarshal([]byte(text), &p); err != nil {
			return nil, fmt.Errorf("loadtest: %s:%d: %w: %v", path, line, ErrInvalid, err)
		}
		if p.Prompt == "" && len(p.Messages) == 0 {
			return nil, fmt.Errorf("loadtest: %s:%d: %w: neither prompt nor messages", path, line, ErrInvalid)
		}
		if p.MaxTokens < 0 {
			return nil, fmt.Errorf("loadtest: %s:%d: %w: negative max_tokens", path, line, ErrInvalid)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadtest: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("loadtest: %s: %w: no prompts", path, ErrInvalid)
	}
	return out, nil
}

// spec is one planned request.
type spec struct {
	Index     int
	Adapter   string
	Prompt    Prompt
	PromptLen int           // planned prompt length in words (an estimate of tokens)
	MaxTokens int           // max_tokens sent
	Arrival   time.Duration // open loop: when it is due, from the start
}

// words are common English words that most tokenizers encode as one token
// each (with their leading space), so N words make a prompt of about N tokens.
var words = strings.Fields(`the of and to in is was that for on with as by at from his her they this
be are or have had not but what all were when we there can an your which their said if do will each
about how up out them then she many some so these would other into has more two like him see time
could no make than first been its who now people my made over did down only way find use may water
long little very after words called just where most know get through back much before go good new
write our used me man too any day same right look think also around another came come work three
word must because does part even place well such here take why things help put years different away
again off went old number great tell men say small every found still between name should home big
give air line set own under read last never us left end along while might next sound below saw
something thought both few those always looked show large often together asked house world going want`)

// workload produces the request sequence. spec i depends only on the seed
// and i's position in the sequence, never on timing or concurrency.
type workload struct {
	mu       sync.Mutex
	cfg      Config
	prompts  []Prompt
	cdf      []float64 // adapter popularity, cumulative
	rng      *rand.Rand
	arrivals *rand.Rand // open-loop gaps, a separate stream so specs match across modes
	words    *rand.Rand // words of exact-length prompts: the same adapters and lengths as without
	next     int
	at       time.Duration
	work     float64 // open loop with ramp-up: unit-rate arrivals so far
}

func newWorkload(cfg Config, prompts []Prompt) *workload {
	w := &workload{
		cfg:      cfg,
		prompts:  prompts,
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6c6f6164)),
		arrivals: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x61727276)),
		words:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0x776f7264)),
	}
	weights := make([]float64, len(cfg.Adapters))
	for k := range weights {
		weights[k] = 1
		if cfg.Popularity == Zipf {
			weights[k] = 1 / math.Pow(float64(k+1), cfg.ZipfS)
		}
	}
	var sum float64
	for _, x := range weights {
		sum += x
	}
	var acc float64
	w.cdf = make([]float64, len(weights))
	for k, x := range weights {
		acc += x / sum
		w.cdf[k] = acc
	}
	w.cdf[len(w.cdf)-1] = 1
	return w
}

// Next returns the next planned request, or false once Requests are planned.
func (w *workload) Next() (spec, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cfg.Requests > 0 && w.next >= w.cfg.Requests {
		return spec{}, false
	}
	s := spec{Index: w.next}
	w.next++
	u := w.rng.Float64()
	s.Adapter = w.cfg.Adapters[sort.SearchFloat64s(w.cdf, u)]
	s.MaxTokens = draw(w.rng, w.cfg.OutputTokens)
	if len(w.prompts) > 0 {
		s.Prompt = w.prompts[w.rng.IntN(len(w.prompts))]
		s.PromptLen = len(strings.Fields(s.Prompt.Prompt))
		for _, m := range s.Prompt.Messages {
			s.PromptLen += len(strings.Fields(m.Content))
		}
		if s.Prompt.MaxTokens > 0 {
			s.MaxTokens = s.Prompt.MaxTokens
		}
	} else {
		s.PromptLen = draw(w.rng, w.cfg.PromptTokens)
		if w.cfg.CountTokens != nil {
			s.Prompt.Prompt = w.exactPrompt(s.PromptLen)
		} else {
			var sb strings.Builder
			for i := range s.PromptLen {
				if i > 0 {
					sb.WriteByte(' ')
				}
				sb.WriteString(words[w.rng.IntN(len(words))])
			}
			s.Prompt.Prompt = sb.String()
		}
		if w.cfg.Endpoint == Chat {
			s.Prompt = Prompt{Messages: []Message{{Role: "user", Content: s.Prompt.Prompt}}}
		}
	}
	switch {
	case w.cfg.Rate > 0 && w.cfg.RampUp > 0:
		w.work += w.arrivals.ExpFloat64()
		s.Arrival = w.rampArrival(w.work)
	case w.cfg.Rate > 0:
		w.at += time.Duration(w.arrivals.ExpFloat64() / w.cfg.Rate * float64(time.Second))
		s.Arrival = w.at
	}
	return s, true
}

// rampArrival maps the time u of a unit-rate Poisson process onto a
// process whose rate rises linearly from 0 to Rate over RampUp and stays
// there, by inverting the expected arrivals by time t: Rate·t²/(2·RampUp)
// during the ramp, then Rate·(RampUp/2 + t − RampUp).
func (w *workload) rampArrival(u float64) time.Duration {
	rate, ramp := w.cfg.Rate, w.cfg.RampUp.Seconds()
	var t float64
	if u < rate*ramp/2 {
		t = math.Sqrt(2 * ramp * u / rate)
	} else {
		t = ramp + (u-rate*ramp/2)/rate
	}
	return time.Duration(t * float64(time.Second))
}

// exactPrompt draws words until the prompt has n tokens by CountTokens. A
// word that would overshoot is swapped for another (most words are one
// token); if none fits after a few draws the prompt stays a token or so
// short.
func (w *workload) exactPrompt(n int) string {
	var sb strings.Builder
	for misses := 0; misses < 16; {
		at := sb.Len()
		if at > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[w.words.IntN(len(words))])
		switch c := w.cfg.CountTokens(sb.String()); {
		case c == n:
			return sb.String()
		case c > n:
			s := sb.String()[:at]
			sb.Reset()
			sb.WriteString(s)
			misses++
		}
	}
	return sb.String()
}

func draw(r *rand.Rand, d Dist) int {
	if d.Max <= d.Min {
		return d.Min
	}
	return d.Min + r.IntN(d.Max-d.Min+1)
}
