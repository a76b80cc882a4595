package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/training/jobs"
)

const qaJSONL = `{"prompt":"Q: What is the color of the sky? A:","completion":" blue."}
{"prompt":"Q: What does a cow say? A:","completion":" moo."}
{"prompt":"Q: What color is grass? A:","completion":" green."}
`

type tempPublisher struct{ root string }

func (p tempPublisher) Publish(name string, write func(dir string) error) error {
	return write(filepath.Join(p.root, strings.ReplaceAll(name, ":", "_")))
}

// startFineTuning runs the server with a real job manager on stories260k.
func startFineTuning(t *testing.T) (*harness, *jobs.Manager) {
	t.Helper()
	dir := fixtures.Path(t, "models", "stories260k")
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := jobs.Open(jobs.Config{Dir: t.TempDir(), MaxFileBytes: 64 << 10},
		map[string]*jobs.Base{"stories260k": {Model: m, Tokenizer: tok}}, tempPublisher{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	h := start(t, func(_ *Config, _ *fakeEngine, s *Server) {
		if s != nil {
			s.EnableFineTuning(mgr)
		}
	})
	return h, mgr
}

func (h *harness) upload(filename, purpose, content string) (*http.Response, []byte) {
	h.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if purpose != "" {
		w.WriteField("purpose", purpose)
	}
	fw, _ := w.CreateFormFile("file", filename)
	fw.Write([]byte(content))
	w.Close()
	return h.do(http.MethodPost, "/v1/files", body.String(), "Content-Type", w.FormDataContentType())
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

func wantError(t *testing.T, resp *http.Response, body []byte, status int, param string) {
	t.Helper()
	e := decodeAs[struct {
		Error struct {
			Message, Type string
			Param, Code   *string
		}
	}](t, body)
	if resp.StatusCode != status || e.Error.Param == nil || *e.Error.Param != param || e.Error.Message == "" {
		t.Fatalf("got %d %s, want %d on %q", resp.StatusCode, body, status, param)
	}
}

func TestFilesAndFineTuningAPI(t *testing.T) {
	h, mgr := startFineTuning(t)

	resp, body := h.upload("qa.jsonl", "fine-tune", qaJSONL)
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	f := decodeAs[jobs.File](t, body)
	if !strings.HasPrefix(f.ID, "file-") || f.Object != "file" || f.Bytes != int64(len(qaJSONL)) || f.Purpose != "fine-tune" {
		t.Fatalf("file object %s", body)
	}
	resp, body = h.upload("qa.jsonl", "assistants", qaJSONL)
	wantError(t, resp, body, 400, "purpose")
	resp, body = h.upload("qa.txt", "fine-tune", qaJSONL)
	wantError(t, resp, body, 400, "file")
	resp, body = h.upload("bad.jsonl", "fine-tune", "{\"prompt\":\"a\",\"completion\":\"b\"}\n[1]\n")
	wantError(t, resp, body, 400, "file")
	if !strings.Contains(string(body), "line 2") {
		t.Fatalf("no line number: %s", body)
	}
	resp, body = h.upload("big.jsonl", "fine-tune", strings.Repeat(qaJSONL, 500))
	if resp.StatusCode != 413 {
		t.Fatalf("oversized upload: %d %s", resp.StatusCode, body)
	}

	_, body = h.do(http.MethodGet, "/v1/files?purpose=fine-tune&limit=1", "")
	list := decodeAs[fileList](t, body)
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != f.ID || *list.FirstID != f.ID || list.HasMore {
		t.Fatalf("list: %s", body)
	}
	resp, body = h.do(http.MethodGet, "/v1/files/"+f.ID+"/content", "")
	if resp.StatusCode != 200 || string(body) != qaJSONL {
		t.Fatalf("content: %d %q", resp.StatusCode, body)
	}
	resp, body = h.do(http.MethodGet, "/v1/files/file-nope", "")
	wantError(t, resp, body, 404, "file_id")

	resp, body = h.post("/v1/fine_tuning/jobs", `{"model":"nope","training_file":"`+f.ID+`"}`)
	wantError(t, resp, body, 404, "model")
	resp, body = h.post("/v1/fine_tuning/jobs", `{"model":"stories260k","training_file":"`+f.ID+`","hyperparameters":{"n_epochs":0}}`)
	wantError(t, resp, body, 400, "hyperparameters.n_epochs")

	req := fmt.Sprintf(`{"model":"stories260k","training_file":%q,"suffix":"qa","seed":1,
		"method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":2,"batch_size":"auto","learning_rate_multiplier":10}}},
		"adapter":{"type":"lora","r":4},"integrations":[],"metadata":{"team":"docs"}}`, f.ID)
	resp, body = h.post("/v1/fine_tuning/jobs", req)
	if resp.StatusCode != 200 {
		t.Fatalf("create job: %d %s", resp.StatusCode, body)
	}
	j := decodeAs[jobs.Job](t, body)
	if j.Object != "fine_tuning.job" || j.Status != "validating_files" || j.Metadata["team"] != "docs" {
		t.Fatalf("job %s", body)
	}
	if _, err := mgr.Wait(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	_, body = h.do(http.MethodGet, "/v1/fine_tuning/jobs/"+j.ID, "")
	var raw map[string]any
	json.Unmarshal(body, &raw)
	for _, k := range []string{"id", "object", "created_at", "error", "finished_at", "fine_tuned_model", "hyperparameters", "model",
		"organization_id", "result_files", "status", "trained_tokens", "training_file", "validation_file", "seed"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("job object lacks required key %q", k)
		}
	}
	j = decodeAs[jobs.Job](t, body)
	if j.Status != "succeeded" || j.FineTunedModel == nil || *j.FineTunedModel != "ft:stories260k::qa:"+strings.TrimPrefix(j.ID, "ftjob-") {
		t.Fatalf("finished job %s", body)
	}
	if hp := raw["hyperparameters"].(map[string]any); hp["batch_size"] != 1.0 || hp["n_epochs"] != 2.0 {
		t.Fatalf("hyperparameters not resolved: %v", hp)
	}

	_, body = h.do(http.MethodGet, "/v1/fine_tuning/jobs?limit=5", "")
	if jl := decodeAs[jobList](t, body); len(jl.Data) != 1 || jl.Data[0].ID != j.ID {
		t.Fatalf("job list %s", body)
	}
	_, body = h.do(http.MethodGet, "/v1/fine_tuning/jobs/"+j.ID+"/events?limit=3", "")
	if el := decodeAs[pagedList[jobs.Event]](t, body); len(el.Data) != 3 || !el.HasMore || el.Data[0].Object != "fine_tuning.job.event" {
		t.Fatalf("events %s", body)
	}
	_, body = h.do(http.MethodGet, "/v1/fine_tuning/jobs/"+j.ID+"/checkpoints", "")
	cl := decodeAs[pagedList[jobs.Checkpoint]](t, body)
	if len(cl.Data) != 1 || cl.Data[0].StepNumber != 6 || !strings.HasSuffix(cl.Data[0].FineTunedModelCheckpoint, ":ckpt-step-6") {
		t.Fatalf("checkpoints %s", body)
	}
	resp, body = h.post("/v1/fine_tuning/jobs/"+j.ID+"/cancel", "")
	wantError(t, resp, body, 400, "fine_tuning_job_id")
	resp, body = h.do(http.MethodGet, "/v1/fine_tuning/jobs/ftjob-nope/events", "")
	wantError(t, resp, body, 404, "fine_tuning_job_id")

	resp, body = h.do(http.MethodDelete, "/v1/files/"+f.ID, "")
	if d := decodeAs[fileDeleted](t, body); resp.StatusCode != 200 || !d.Deleted || d.ID != f.ID {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
}

func TestFineTuningErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{&jobs.Error{Kind: jobs.ErrConflict, Param: "file_id", Code: "file_in_use", Message: "in use"}, 409},
		{&jobs.Error{Kind: jobs.ErrUnsupported, Param: "method.type", Message: "dpo"}, 400},
		{jobs.ErrClosed, 503},
		{os.ErrPermission, 500},
	} {
		if got := toAPIError(fineTuningError(tc.err)); got.Status != tc.status {
			t.Errorf("%v: status %d, want %d", tc.err, got.Status, tc.status)
		}
	}
}

// Training spends the server's CPU and publishes adapters every user can
// select, so its routes take the admin key, not the users' key.
func TestFineTuningNeedsAdminKey(t *testing.T) {
	mgr, err := jobs.Open(jobs.Config{Dir: t.TempDir()}, map[string]*jobs.Base{}, tempPublisher{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	h := start(t, func(c *Config, _ *fakeEngine, s *Server) {
		c.APIKey, c.AdminKey = "user-key", "admin-key"
		if s != nil {
			s.EnableFineTuning(mgr)
		}
	})
	for _, c := range []struct {
		path, key string
		status    int
	}{
		{"/v1/files", "", 401},
		{"/v1/files", "user-key", 401},
		{"/v1/files", "admin-key", 200},
		{"/v1/fine_tuning/jobs", "user-key", 401},
		{"/v1/fine_tuning/jobs", "admin-key", 200},
	} {
		var hdr []string
		if c.key != "" {
			hdr = []string{"Authorization", "Bearer " + c.key}
		}
		resp, body := h.do(http.MethodGet, c.path, "", hdr...)
		if resp.StatusCode != c.status {
			t.Errorf("GET %s with %q: %d %s, want %d", c.path, c.key, resp.StatusCode, body, c.status)
		}
	}
}
