package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors.
var (
	ErrInvalid      = errors.New("invalid hub request")
	ErrNotFound     = errors.New("not found on the hub")
	ErrUnauthorized = errors.New("hub refused access")
	ErrChecksum     = errors.New("checksum mismatch")
	ErrNoWeights    = errors.New("repository has no safetensors weights")
)

// DefaultEndpoint is the public Hugging Face Hub.
const DefaultEndpoint = "https://huggingface.co"

// Options configures Download. Only CacheDir is required.
type Options struct {
	CacheDir string // snapshots go to CacheDir/models--ORG--NAME/REVISION
	Endpoint string // default DefaultEndpoint (HF_ENDPOINT)
	Revision string // branch, tag or commit; default "main"
	Token    string // sent as a bearer token (HF_TOKEN); needed for gated repos
	Client   *http.Client
	Retries  int // extra attempts per file after a failed transfer; default 3

	// Progress, when set, is called as bytes arrive with the file being
	// fetched and the bytes done and total over all files (total is -1 when
	// the server did not list sizes).
	Progress func(file string, done, total int64)
}

// FromEnv fills Endpoint and Token from HF_ENDPOINT and HF_TOKEN (via getenv,
// normally os.Getenv) where they are unset.
func (o *Options) FromEnv(getenv func(string) string) {
	if o.Endpoint == "" {
		o.Endpoint = getenv("HF_ENDPOINT")
	}
	if o.Token == "" {
		o.Token = getenv("HF_TOKEN")
	}
}

func (o *Options) defaults() {
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Revision == "" {
		o.Revision = "main"
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
}

var (
	repoPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)
	revision = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)
)

// Validate checks the options after defaults are applied.
func (o Options) Validate() error {
	o.defaults()
	if o.CacheDir == "" {
		return fmt.Errorf("hub: %w: no cache directory", ErrInvalid)
	}
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("hub: %w: endpoint %q is not an http(s) URL", ErrInvalid, o.Endpoint)
	}
	if !revision.MatchString(o.Revision) || strings.Contains(o.Revision, "..") {
		return fmt.Errorf("hub: %w: revision %q", ErrInvalid, o.Revision)
	}
	if o.Retries < 0 {
		return fmt.Errorf("hub: %w: negative retries", ErrInvalid)
	}
	return nil
}

// ParseRepo checks a repository id "ORG/NAME" (or a bare "NAME"), with an
// optional "hf:" prefix, and returns it without the prefix. Names that could
// escape the cache directory are rejected.
func ParseRepo(repo string) (string, error) {
	repo = strings.TrimPrefix(repo, "hf:")
	parts := strings.Split(repo, "/")
	if len(parts) > 2 {
		return "", fmt.Errorf("hub: %w: repository %q: want ORG/NAME", ErrInvalid, repo)
	}
	for _, p := range parts {
		if !repoPart.MatchString(p) || strings.Contains(p, "..") || strings.HasSuffix(p, ".") {
			return "", fmt.Errorf("hub: %w: repository %q: want ORG/NAME of letters, digits, '.', '_' and '-'", ErrInvalid, repo)
		}
	}
	return repo, nil
}

// wanted reports whether a repository file is one the engine reads. Files in
// subfolders (original/, onnx/...) are never fetched.
func wanted(name string) bool {
	if strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		return false
	}
	switch name {
	case "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
		"special_tokens_map.json", "chat_template.jinja", "model.safetensors.index.json":
		return true
	}
	return strings.HasSuffix(name, ".safetensors")
}

type sibling struct {
	Name string `json:"rfilename"`
	Size *int64 `json:"size"`
	LFS  *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

func (s sibling) size() int64 {
	switch {
	case s.LFS != nil && s.LFS.Size > 0:
		return s.LFS.Size
	case s.Size != nil:
		return *s.Size
	}
	return -1
}

const completeMarker = ".complete"

// Download fetches the config, tokenizer and safetensors files of repo at
// opts.Revision into the cache and returns the snapshot directory. Files
// already complete in the cache are not fetched again; a partial file
// (NAME.part) is resumed with an HTTP Range request. When the hub cannot be
// reached but an earlier download of the same revision completed, that
// snapshot is returned.
func Download(ctx context.Context, repo string, opts Options) (string, error) {
	opts.defaults()
	if err := opts.Validate(); err != nil {
		return "", err
	}
	repo, err := ParseRepo(repo)
	if err != nil {
		return "", err
	}
	dir := SnapshotDir(opts.CacheDir, repo, opts.Revision)
	files, err := list(ctx, repo, opts)
	if err != nil {
		var netErr *url.Error
		if errors.As(err, &netErr) && ctx.Err() == nil {
			if _, serr := os.Stat(filepath.Join(dir, completeMarker)); serr == nil {
				return dir, nil
			}
		}
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	d := &downloader{opts: opts, repo: repo, dir: dir, total: 0}
	for _, f := range files {
		if f.size() < 0 {
			d.total = -1
			break
		}
		d.total += f.size()
	}
	for _, f := range files {
		if err := d.fetch(ctx, f); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, completeMarker), nil, 0o644); err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	return dir, nil
}

// SnapshotDir is where Download puts revision rev of repo (a valid id from
// ParseRepo) under cacheDir.
func SnapshotDir(cacheDir, repo, rev string) string {
	if rev == "" {
		rev = "main"
	}
	return filepath.Join(cacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"), strings.ReplaceAll(rev, "/", "--"))
}

// list asks the hub for the repository's files and keeps the wanted ones.
func list(ctx context.Context, repo string, opts Options) ([]sibling, error) {
	u := opts.Endpoint + "/api/models/" + repo
	if opts.Revision != "main" {
		u += "/revision/" + url.PathEscape(opts.Revision)
	}
	resp, err := get(ctx, opts, u+"?blobs=true", "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := statusErr(resp, repo, ""); err != nil {
		return nil, err
	}
	var info struct {
		Siblings []sibling `json:"siblings"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("hub: %s: file list: %w: %v", repo, ErrInvalid, err)
	}
	var out []sibling
	var hasConfig, hasWeights bool
	for _, s := range info.Siblings {
		if !wanted(s.Name) {
			continue
		}
		out = append(out, s)
		hasConfig = hasConfig || s.Name == "config.json"
		hasWeights = hasWeights || strings.HasSuffix(s.Name, ".safetensors")
	}
	if !hasConfig {
		return nil, fmt.Errorf("hub: %s: %w: config.json", repo, ErrNotFound)
	}
	if !hasWeights {
		return nil, fmt.Errorf("hub: %s: %w (convert .bin or .gguf checkpoints to safetensors first)", repo, ErrNoWeights)
	}
	return out, nil
}

func get(ctx context.Context, opts Options, u, rangeHdr string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+opts.Token)
	}
	if rangeHdr != "" {
		req.Header.Set("Range", rangeHdr)
	}
	req.Header.Set("User-Agent", "loraplex")
	resp, err := opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return resp, nil
}

func statusErr(resp *http.Response, repo, file string) error {
	what := repo
	if file != "" {
		what += ": " + file
	}
	switch {
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusPartialContent:
		return nil
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("hub: %s: %w (HTTP %d): gated or private repositories need a token (HF_TOKEN) with access", what, ErrUnauthorized, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("hub: %s: %w (HTTP 404): check the repository name and revision", what, ErrNotFound)
	}
	return fmt.Errorf("hub: %s: HTTP %d %s", what, resp.StatusCode, http.StatusText(resp.StatusCode))
}

type downloader struct {
	opts        Options
	repo, dir   string
	done, total int64
	lastReport  time.Time
}

// fetch makes one file complete in the snapshot directory, retrying broken
// transfers from where they stopped.
func (d *downloader) fetch(ctx context.Context, f sibling) error {
	final := filepath.Join(d.dir, f.Name)
	if st, err := os.Stat(final); err == nil && (f.size() < 0 || st.Size() == f.size()) {
		d.advance(f.Name, st.Size(), true)
		return nil
	}
	base := d.done
	var err error
	for attempt := 0; attempt <= d.opts.Retries; attempt++ {
		d.done = base
		if err = d.transfer(ctx, f, final); err == nil || ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return err
}

// transferError marks failures worth retrying: the connection broke or the
// server had a transient problem.
type transferError struct{ err error }

func (e transferError) Error() string { return e.err.Error() }
func (e transferError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var te transferError
	return errors.As(err, &te)
}

func (d *downloader) transfer(ctx context.Context, f sibling, final string) error {
	part := final + ".part"
	pf, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer pf.Close()
	have, err := pf.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	var rangeHdr string
	if have > 0 {
		rangeHdr = fmt.Sprintf("bytes=%d-", have)
	}
	u := d.opts.Endpoint + "/" + d.repo + "/resolve/" + url.PathEscape(d.opts.Revision) + "/" + (&url.URL{Path: f.Name}).EscapedPath()
	var linked string // sha256 announced on a redirect hop
	opts := d.opts
	client := *opts.Client
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if h := checksumHeader(req.Response.Header); h != "" {
			linked = h
		}
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		return nil
	}
	opts.Client = &client
	resp, err := get(ctx, opts, u, rangeHdr)
	if err != nil {
		return transferError{err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The part may already be whole; otherwise start over.
		if f.size() == have {
			break
		}
		pf.Truncate(0)
		return transferError{fmt.Errorf("hub: %s: %s: server refused to resume; restarting", d.repo, f.Name)}
	case resp.StatusCode >= 500:
		return transferError{statusErr(resp, d.repo, f.Name)}
	default:
		if err := statusErr(resp, d.repo, f.Name); err != nil {
			return err
		}
	}
	want := linked
	if h := checksumHeader(resp.Header); h != "" {
		want = h
	}
	if f.LFS != nil && isSHA256(f.LFS.SHA256) {
		want = strings.ToLower(f.LFS.SHA256)
	}
	if resp.StatusCode == http.StatusOK && have > 0 {
		// The server ignored the range: the body is the whole file.
		if err := pf.Truncate(0); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		if _, err := pf.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		have = 0
	}
	if resp.StatusCode == http.StatusPartialContent {
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			pf.Truncate(0)
			return transferError{fmt.Errorf("hub: %s: %s: server answered an unexpected range %q", d.repo, f.Name, resp.Header.Get("Content-Range"))}
		}
	}
	d.advance(f.Name, have, false)
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		buf := make([]byte, 1<<20)
		for {
			n, rerr := resp.Body.Read(buf)
			if n > 0 {
				if _, err := pf.Write(buf[:n]); err != nil {
					return fmt.Errorf("hub: %w", err)
				}
				d.advance(f.Name, int64(n), false)
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return transferError{fmt.Errorf("hub: %s: %s: transfer broke: %w", d.repo, f.Name, rerr)}
			}
		}
	}
	size, _ := pf.Seek(0, io.SeekEnd)
	if f.size() >= 0 && size != f.size() {
		pf.Truncate(0)
		return transferError{fmt.Errorf("hub: %s: %s: got %d bytes, the hub lists %d", d.repo, f.Name, size, f.size())}
	}
	if want != "" {
		got, err := fileSHA256(pf)
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		if got != want {
			pf.Close()
			os.Remove(part)
			return fmt.Errorf("hub: %s: %s: %w: sha256 %s, the hub says %s (the partial file was deleted; run again)",
				d.repo, f.Name, ErrChecksum, got, want)
		}
	}
	if err := pf.Sync(); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := pf.Close(); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(part, final); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	d.advance(f.Name, 0, true)
	return nil
}

// advance counts n more bytes and reports progress at most every 100 ms,
// and always when a file is finished.
func (d *downloader) advance(file string, n int64, finished bool) {
	d.done += n
	if d.opts.Progress == nil {
		return
	}
	if now := time.Now(); finished || now.Sub(d.lastReport) >= 100*time.Millisecond {
		d.lastReport = now
		d.opts.Progress(path.Base(file), d.done, d.total)
	}
}

// checksumHeader returns the sha256 a hub response announces: X-Linked-Etag
// on LFS files, or an ETag that is itself a sha256 (git blob ids of small
// files are 40-digit sha1s and are ignored).
func checksumHeader(h http.Header) string {
	for _, k := range []string{"X-Linked-Etag", "Etag"} {
		v := strings.Trim(strings.TrimPrefix(h.Get(k), "W/"), `"`)
		if isSHA256(v) {
			return strings.ToLower(v)
		}
	}
	return ""
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

func fileSHA256(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
