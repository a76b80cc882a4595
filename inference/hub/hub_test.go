package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub imitates the parts of the Hugging Face Hub that Download uses: the
// model API, resolve URLs that redirect LFS files to a CDN path announcing
// X-Linked-Etag, and Range support via http.ServeContent.
type fakeHub struct {
	t     *testing.T
	repo  string
	files map[string][]byte
	lfs   map[string]bool

	mu         sync.Mutex
	ranges     []string // Range header of each CDN/file request ("" when none)
	fetched    []string
	cutOnce    map[string]int  // file -> bytes to send before cutting the connection once
	badLinked  map[string]bool // announce a wrong sha256 in X-Linked-Etag
	ignoreRng  bool
	token      string
	omitLFSSHA bool
	listedSHA  map[string]string // file -> sha256 the listing claims instead of the real one
}

func newFakeHub(t *testing.T) (*fakeHub, *httptest.Server) {
	h := &fakeHub{
		t:    t,
		repo: "acme/tiny",
		files: map[string][]byte{
			"config.json":                       []byte(`{"architectures":["LlamaForCausalLM"]}`),
			"tokenizer.json":                    []byte(`{"version":"1.0"}`),
			"model-00001-of-00002.safetensors":  bytes.Repeat([]byte("weights-1|"), 5000),
			"model-00002-of-00002.safetensors":  bytes.Repeat([]byte("weights-2|"), 3000),
			"model.safetensors.index.json":      []byte(`{"weight_map":{}}`),
			"pytorch_model.bin":                 []byte("not wanted"),
			"original/consolidated.safetensors": []byte("not wanted either"),
			"README.md":                         []byte("# tiny"),
		},
		lfs:       map[string]bool{"model-00001-of-00002.safetensors": true, "model-00002-of-00002.safetensors": true},
		cutOnce:   map[string]int{},
		badLinked: map[string]bool{},
		listedSHA: map[string]string{},
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token {
		http.Error(w, "gated", http.StatusUnauthorized)
		return
	}
	switch {
	case r.URL.Path == "/api/models/"+h.repo || r.URL.Path == "/api/models/"+h.repo+"/revision/v1.0":
		var sibs []map[string]any
		for _, name := range slices.Sorted(mapsKeys(h.files)) {
			s := map[string]any{"rfilename": name, "size": len(h.files[name])}
			if h.lfs[name] {
				lfs := map[string]any{"size": len(h.files[name])}
				if !h.omitLFSSHA {
					lfs["sha256"] = sha(h.files[name])
					if s, ok := h.listedSHA[name]; ok {
						lfs["sha256"] = s
					}
				}
				s["lfs"] = lfs
			}
			sibs = append(sibs, s)
		}
		json.NewEncoder(w).Encode(map[string]any{"id": h.repo, "siblings": sibs})
	case strings.HasPrefix(r.URL.Path, "/"+h.repo+"/resolve/"):
		rest := strings.TrimPrefix(r.URL.Path, "/"+h.repo+"/resolve/")
		_, name, _ := strings.Cut(rest, "/")
		data, ok := h.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if h.lfs[name] {
			linked := sha(data)
			if h.badLinked[name] {
				linked = sha([]byte("something else"))
			}
			w.Header().Set("X-Linked-Etag", `"`+linked+`"`)
			w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
			http.Redirect(w, r, "/cdn/"+name, http.StatusFound)
			return
		}
		w.Header().Set("ETag", `"`+strings.Repeat("a", 40)+`"`) // a git sha1, not checked
		h.serve(w, r, name, data)
	case strings.HasPrefix(r.URL.Path, "/cdn/"):
		name := strings.TrimPrefix(r.URL.Path, "/cdn/")
		h.serve(w, r, name, h.files[name])
	default:
		http.NotFound(w, r)
	}
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	h.mu.Lock()
	h.ranges = append(h.ranges, r.Header.Get("Range"))
	h.fetched = append(h.fetched, name)
	cut, doCut := h.cutOnce[name]
	delete(h.cutOnce, name)
	h.mu.Unlock()
	if doCut {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	if h.ignoreRng {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func checkSnapshot(t *testing.T, h *fakeHub, dir string) {
	t.Helper()
	for _, name := range []string{"config.json", "tokenizer.json", "model-00001-of-00002.safetensors",
		"model-00002-of-00002.safetensors", "model.safetensors.index.json"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, h.files[name]) {
			t.Errorf("%s: content differs (err %v)", name, err)
		}
	}
	for _, name := range []string{"pytorch_model.bin", "README.md", "original", "config.json.part"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s should not be in the snapshot", name)
		}
	}
}

func TestDownload(t *testing.T) {
	h, srv := newFakeHub(t)
	cache := t.TempDir()
	var last [2]int64
	calls := 0
	opts := Options{CacheDir: cache, Endpoint: srv.URL, Progress: func(file string, done, total int64) {
		calls++
		if done < last[0] || done > total {
			t.Errorf("progress went from %d to %d of %d", last[0], done, total)
		}
		last = [2]int64{done, total}
	}}
	dir, err := Download(context.Background(), "hf:acme/tiny", opts)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, "models--acme--tiny", "main") {
		t.Errorf("dir = %s", dir)
	}
	checkSnapshot(t, h, dir)
	var total int64
	for _, n := range []string{"config.json", "tokenizer.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"} {
		total += int64(len(h.files[n]))
	}
	if last != [2]int64{total, total} || calls < 5 {
		t.Errorf("last progress %v after %d calls, want [%d %d]", last, calls, total, total)
	}

	// A second download fetches nothing but still reports the files done.
	h.fetched, last = nil, [2]int64{}
	if _, err := Download(context.Background(), "acme/tiny", opts); err != nil {
		t.Fatal(err)
	}
	if len(h.fetched) != 0 || last != [2]int64{total, total} {
		t.Errorf("cached run fetched %v, last progress %v", h.fetched, last)
	}
	// Offline: the completed snapshot is still served.
	srv.Close()
	if got, err := Download(context.Background(), "acme/tiny", opts); err != nil || got != dir {
		t.Errorf("offline: %s, %v", got, err)
	}
}

func TestResumeAfterCutConnection(t *testing.T) {
	for _, ignoreRange := range []bool{false, true} {
		h, srv := newFakeHub(t)
		h.ignoreRng = ignoreRange
		h.cutOnce["model-00001-of-00002.safetensors"] = 12345
		h.cutOnce["config.json"] = 7
		dir, err := Download(context.Background(), "acme/tiny", Options{CacheDir: t.TempDir(), Endpoint: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		checkSnapshot(t, h, dir)
		if !ignoreRange && !slices.Contains(h.ranges, "bytes=12345-") {
			t.Errorf("no resume request; ranges sent: %q", h.ranges)
		}
	}
}

func TestResumeExistingPart(t *testing.T) {
	h, srv := newFakeHub(t)
	cache := t.TempDir()
	dir := filepath.Join(cache, "models--acme--tiny", "v1.0")
	os.MkdirAll(dir, 0o755)
	name := "model-00002-of-00002.safetensors"
	os.WriteFile(filepath.Join(dir, name+".part"), h.files[name][:1000], 0o644)
	got, err := Download(context.Background(), "acme/tiny", Options{CacheDir: cache, Endpoint: srv.URL, Revision: "v1.0"})
	if err != nil || got != dir {
		t.Fatalf("%s, %v", got, err)
	}
	checkSnapshot(t, h, dir)
	if !slices.Contains(h.ranges, "bytes=1000-") {
		t.Errorf("ranges sent: %q", h.ranges)
	}
}

func TestChecksumMismatch(t *testing.T) {
	const name = "model-00002-of-00002.safetensors"
	cases := map[string]func(h *fakeHub){
		"redirect X-Linked-Etag": func(h *fakeHub) { h.omitLFSSHA, h.badLinked[name] = true, true },
		"listing lfs.sha256":     func(h *fakeHub) { h.listedSHA[name] = sha([]byte("other")) },
	}
	for what, lie := range cases {
		t.Run(what, func(t *testing.T) {
			h, srv := newFakeHub(t)
			lie(h)
			cache := t.TempDir()
			opts := Options{CacheDir: cache, Endpoint: srv.URL}
			_, err := Download(context.Background(), "acme/tiny", opts)
			if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want ErrChecksum naming %s", err, name)
			}
			dir := filepath.Join(cache, "models--acme--tiny", "main")
			for _, p := range []string{name, name + ".part", completeMarker} {
				if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
					t.Errorf("%s left behind after a checksum mismatch", p)
				}
			}
			// Once the hub is right again, the next run succeeds from scratch.
			h.omitLFSSHA, h.badLinked, h.listedSHA = false, map[string]bool{}, map[string]string{}
			if dir, err = Download(context.Background(), "acme/tiny", opts); err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, h, dir)
		})
	}
}

func TestToken(t *testing.T) {
	h, srv := newFakeHub(t)
	h.token = "s3cret"
	_, err := Download(context.Background(), "acme/tiny", Options{CacheDir: t.TempDir(), Endpoint: srv.URL})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
	opts := Options{CacheDir: t.TempDir()}
	opts.FromEnv(func(k string) string { return map[string]string{"HF_TOKEN": "s3cret", "HF_ENDPOINT": srv.URL}[k] })
	dir, err := Download(context.Background(), "acme/tiny", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, h, dir)
}

func TestRepoErrors(t *testing.T) {
	h, srv := newFakeHub(t)
	opts := Options{CacheDir: t.TempDir(), Endpoint: srv.URL}
	if _, err := Download(context.Background(), "acme/absent", opts); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent repo: %v", err)
	}
	delete(h.files, "model-00001-of-00002.safetensors")
	delete(h.files, "model-00002-of-00002.safetensors")
	delete(h.files, "original/consolidated.safetensors")
	if _, err := Download(context.Background(), "acme/tiny", opts); !errors.Is(err, ErrNoWeights) {
		t.Errorf("no weights: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Download(ctx, "acme/tiny", opts); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestParseRepo(t *testing.T) {
	good := map[string]string{"acme/tiny": "acme/tiny", "hf:acme/tiny": "acme/tiny", "gpt2": "gpt2",
		"HuggingFaceTB/SmolLM2-135M-Instruct": "HuggingFaceTB/SmolLM2-135M-Instruct", "a_b/c.d": "a_b/c.d"}
	for in, want := range good {
		if got, err := ParseRepo(in); err != nil || got != want {
			t.Errorf("ParseRepo(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "/", "a/", "/b", "../x", "a/..", "a/../b", "a/b/c", ".hidden/x", "a/b.", "a b/c", "a\\b", "a/b?x", "a/b#c", "-a/b",
		strings.Repeat("x", 97) + "/y"} {
		if _, err := ParseRepo(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRepo(%q) accepted", bad)
		}
	}
	for _, o := range []Options{{}, {CacheDir: "c", Endpoint: "ftp://x"}, {CacheDir: "c", Revision: "../main"}, {CacheDir: "c", Retries: -1}} {
		if err := o.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%+v) = %v", o, err)
		}
	}
}
