package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Error kinds counted in a Report.
const (
	KindConnect     = "connect"       // the server could not be reached
	KindTimeout     = "timeout"       // the request outlived Config.Timeout
	KindBroken      = "broken_stream" // the stream broke or ended without [DONE]
	KindStreamError = "stream_error"  // the server sent an error event mid-stream
	KindBadResponse = "bad_response"  // not an SSE stream or unparsable chunks
	kindHTTPPrefix  = "http_"         // http_500, http_404, ...
)

// result is what one request measured.
type result struct {
	spec       spec
	Start      time.Time       // when the request was sent
	TTFT       time.Duration   // to the first token; 0 when none arrived
	Gaps       []time.Duration // between successive token chunks
	E2E        time.Duration
	TokensIn   int // from usage when the server reports it, else the planned estimate
	TokensOut  int // from usage when reported, else the number of token chunks
	Err        string
	ErrMsg     string // first part of the error detail
	Unfinished bool   // cut off by the end of the run
}

// maxLine bounds one SSE line; a longer one is a broken stream, not an OOM.
const maxLine = 4 << 20

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

type chunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *usage          `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (c Config) body(s spec) ([]byte, error) {
	req := map[string]any{
		"model":          s.Adapter,
		"max_tokens":     s.MaxTokens,
		"stream":         true,
		"stream_options": map[string]bool{"include_usage": true},
		"temperature":    c.Temperature,
	}
	if c.IgnoreEOS {
		req["ignore_eos"] = true
	}
	if c.Endpoint == Chat {
		msgs := s.Prompt.Messages
		if len(msgs) == 0 {
			msgs = []Message{{Role: "user", Content: s.Prompt.Prompt}}
		}
		req["messages"] = msgs
	} else {
		p := s.Prompt.Prompt
		if p == "" {
			var parts []string
			for _, m := range s.Prompt.Messages {
				parts = append(parts, m.Content)
			}
			p = strings.Join(parts, "\n")
		}
		req["prompt"] = p
	}
	return json.Marshal(req)
}

func (c Config) path() string {
	if c.Endpoint == Chat {
		return "/v1/chat/completions"
	}
	return "/v1/completions"
}

// do sends one request and measures it. runCtx ends with the run; a request
// it cuts off is Unfinished rather than failed.
func do(runCtx context.Context, c Config, client *http.Client, s spec) result {
	r := result{spec: s, TokensIn: s.PromptLen}
	body, err := c.body(s)
	if err != nil {
		r.Err, r.ErrMsg = KindBadResponse, err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(runCtx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+c.path(), bytes.NewReader(body))
	if err != nil {
		r.Err, r.ErrMsg = KindConnect, err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	start := time.Now()
	r.Start = start
	fail := func(kind string, err error) result {
		r.E2E = time.Since(start)
		switch {
		case runCtx.Err() != nil:
			r.Unfinished = true
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			r.Err, r.ErrMsg = KindTimeout, fmt.Sprintf("no answer within %v", c.Timeout)
		default:
			r.Err = kind
			if err != nil {
				r.ErrMsg = truncate(err.Error())
			}
		}
		return r
	}
	resp, err := client.Do(req)
	if err != nil {
		if isDialError(err) {
			return fail(KindConnect, err)
		}
		return fail(KindBroken, err) // accepted, then dropped before answering
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fail(fmt.Sprintf("%s%d", kindHTTPPrefix, resp.StatusCode), errors.New(strings.TrimSpace(string(msg))))
	}
	var last time.Time
	u, kind, err := readStream(resp.Body, func() {
		now := time.Now()
		if last.IsZero() {
			r.TTFT = now.Sub(start)
		} else {
			r.Gaps = append(r.Gaps, now.Sub(last))
		}
		last = now
		r.TokensOut++
	})
	if err != nil {
		return fail(kind, err)
	}
	r.E2E = time.Since(start)
	if u != nil {
		r.TokensIn, r.TokensOut = u.PromptTokens, u.CompletionTokens
	}
	return r
}

// readStream reads an OpenAI SSE stream up to data: [DONE], calling onToken
// for each chunk that carries text, and returns the last usage it saw. On
// failure it returns the error kind.
func readStream(body io.Reader, onToken func()) (*usage, string, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	var u *usage
	for {
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("stream ended without data: [DONE]")
			}
			return nil, KindBroken, err
		}
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue // comments, event names, ids, blank separators
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			return u, "", nil
		}
		var ch chunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return nil, KindBadResponse, fmt.Errorf("unparsable chunk %q", truncate(data))
		}
		if len(ch.Error) > 0 && string(ch.Error) != "null" {
			return nil, KindStreamError, errors.New(truncate(string(ch.Error)))
		}
		if ch.Usage != nil {
			u = ch.Usage
		}
		for _, choice := range ch.Choices {
			if choice.Text != "" || choice.Delta.Content != "" {
				onToken()
				break
			}
		}
	}
}

// readLine returns one line without its end, failing on lines over maxLine.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxLine {
			return "", fmt.Errorf("SSE line longer than %d bytes", maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		return strings.TrimRight(string(buf), "\r\n"), nil
	}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// isDialError tells connection failures from other transport errors.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
