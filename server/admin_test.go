package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/server/openai"
)

func TestModelsListAndGet(t *testing.T) {
	h := start(t, func(c *Config, _ *fakeEngine, _ *Server) { c.ModelRoot = "/models/base" })
	resp, b := h.do(http.MethodGet, "/v1/models", "")
	var list openai.ModelList
	if err := json.Unmarshal(b, &list); err != nil || resp.StatusCode != 200 || list.Object != "list" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if len(list.Data) != 1+len(testAdapters) || list.Data[0].ID != "base" || list.Data[0].Parent != nil ||
		list.Data[0].MaxModelLen != 128 || list.Data[0].Root != "/models/base" {
		t.Fatalf("list %s", b)
	}
	for _, m := range list.Data[1:] {
		if m.Object != "model" || m.Parent == nil || *m.Parent != "base" || m.OwnedBy == "" || m.Created == 0 || m.MaxModelLen != 128 {
			t.Errorf("adapter entry %+v", m)
		}
	}
	for _, id := range []string{"base", "alpha", "org/gamma", "ft:base:acme:tone:7p4l", "base:beta"} {
		resp, b := h.do(http.MethodGet, "/v1/models/"+id, "")
		var m openai.Model
		_ = json.Unmarshal(b, &m)
		if resp.StatusCode != 200 || (m.ID != id && "base:"+m.ID != id) {
			t.Errorf("GET %s: %d %s", id, resp.StatusCode, b)
		}
	}
	resp, b = h.do(http.MethodGet, "/v1/models/nope", "")
	if resp.StatusCode != 404 || errorBody(t, b)["code"] != "model_not_found" {
		t.Errorf("unknown model: %d %s", resp.StatusCode, b)
	}
}

func adapterDir(t *testing.T, root, name string) string {
	t.Helper()
	d := filepath.Join(root, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "adapter_config.json"), []byte(`{"peft_type":"LORA"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLoadUnloadAdapter(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	good := adapterDir(t, root, "sql")
	evil := adapterDir(t, outside, "evil")
	if err := os.Symlink(evil, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *Config, _ *fakeEngine, _ *Server) { c.AdapterImportRoots = []string{root} })
	load := func(body string) (int, string) {
		resp, b := h.post("/v1/load_lora_adapter", body)
		return resp.StatusCode, string(b)
	}
	if code, b := load(`{"lora_name":"sql","lora_path":"` + good + `"}`); code != 200 || b != "Success: LoRA adapter 'sql' added successfully." {
		t.Fatalf("load: %d %q", code, b)
	}
	var r openai.ChatResponse
	h.postJSON("/v1/chat/completions", `{"model":"sql","messages":[{"role":"user","content":"hi"}]}`, &r)
	if r.Choices[0].Message.Content != "[sql] hello world." {
		t.Errorf("new adapter not served: %+v", r.Choices[0])
	}
	_, b := h.do(http.MethodGet, "/v1/models/sql", "")
	if !strings.Contains(string(b), good) {
		t.Errorf("model entry lacks root: %s", b)
	}
	bad := []struct {
		body   string
		status int
		code   string
	}{
		{`{"lora_name":"sql","lora_path":"` + good + `"}`, 400, "adapter_exists"},
		{`{"lora_name":"x","lora_path":"` + evil + `"}`, 403, "path_not_allowed"},
		{`{"lora_name":"x","lora_path":"` + filepath.Join(root, "link") + `"}`, 403, "path_not_allowed"},
		{`{"lora_name":"x","lora_path":"` + root + `/../` + filepath.Base(outside) + `/evil"}`, 403, "path_not_allowed"},
		// Outside the roots, existence is not revealed.
		{`{"lora_name":"x","lora_path":"` + filepath.Join(outside, "missing") + `"}`, 403, "path_not_allowed"},
		{`{"lora_name":"x","lora_path":"sql"}`, 400, "invalid_path"},
		{`{"lora_name":"x","lora_path":"` + root + `/missing"}`, 400, "invalid_path"},
		{`{"lora_name":"x","lora_path":"` + root + `"}`, 400, "invalid_adapter"},
		{`{"lora_name":"../x","lora_path":"` + good + `"}`, 400, "invalid_adapter_name"},
		{`{"lora_name":"a/b/c","lora_path":"` + good + `"}`, 400, "invalid_adapter_name"},
		{`{"lora_name":"base:x","lora_path":"` + good + `"}`, 400, "invalid_adapter_name"},
		{`{"lora_name":"base","lora_path":"` + good + `"}`, 400, "invalid_adapter_name"},
		{`{"lora_name":"x"}`, 400, ""},
		{`{"lora_name":7,"lora_path":"x"}`, 400, ""},
	}
	for _, c := range bad {
		resp, b := h.post("/v1/load_lora_adapter", c.body)
		e := errorBody(t, b)
		if resp.StatusCode != c.status || (c.code != "" && e["code"] != c.code) {
			t.Errorf("%s: %d %s", c.body, resp.StatusCode, b)
		}
	}
	if code, b := load(`{"lora_name":"sql","lora_path":"` + good + `","load_inplace":true}`); code != 200 {
		t.Errorf("load_inplace: %d %s", code, b)
	}
	resp, b := h.post("/v1/unload_lora_adapter", `{"lora_name":"sql"}`)
	if resp.StatusCode != 200 || string(b) != "Success: LoRA adapter 'sql' removed successfully." {
		t.Errorf("unload: %d %q", resp.StatusCode, b)
	}
	resp, b = h.post("/v1/unload_lora_adapter", `{"lora_name":"sql"}`)
	if resp.StatusCode != 404 || errorBody(t, b)["code"] != "model_not_found" {
		t.Errorf("unload twice: %d %s", resp.StatusCode, b)
	}
	resp, b = h.post("/v1/chat/completions", `{"model":"sql","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 404 {
		t.Errorf("removed adapter still served: %d %s", resp.StatusCode, b)
	}
}

func TestLoadDisabledWithoutRoots(t *testing.T) {
	h := start(t, nil)
	resp, b := h.post("/v1/load_lora_adapter", `{"lora_name":"x","lora_path":"/etc"}`)
	if resp.StatusCode != 403 || errorBody(t, b)["code"] != "import_disabled" {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

func TestAuth(t *testing.T) {
	root := t.TempDir()
	good := adapterDir(t, root, "a1")
	h := start(t, func(c *Config, _ *fakeEngine, _ *Server) {
		c.APIKey, c.AdminKey, c.AdapterImportRoots = "user-key", "admin-key", []string{root}
	})
	chat := `{"messages":[{"role":"user","content":"hi"}]}`
	load := `{"lora_name":"a1","lora_path":"` + good + `"}`
	cases := []struct {
		method, path, body, key string
		status                  int
	}{
		{"GET", "/v1/models", "", "", 401},
		{"GET", "/v1/models", "", "wrong", 401},
		{"GET", "/v1/models", "", "user-key", 200},
		{"GET", "/v1/models", "", "admin-key", 200},
		{"POST", "/v1/chat/completions", chat, "", 401},
		{"POST", "/v1/chat/completions", chat, "user-key", 200},
		{"POST", "/tokenize", `{"prompt":"a"}`, "", 401},
		{"POST", "/v1/load_lora_adapter", load, "user-key", 401},
		{"POST", "/v1/load_lora_adapter", load, "admin-key", 200},
		{"POST", "/v1/unload_lora_adapter", `{"lora_name":"a1"}`, "", 401},
		{"GET", "/health", "", "", 200},
		{"GET", "/metrics", "", "", 200},
	}
	for _, c := range cases {
		var hdr []string
		if c.key != "" {
			hdr = []string{"Authorization", "Bearer " + c.key}
		}
		resp, b := h.do(c.method, c.path, c.body, hdr...)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s key %q: %d %s", c.method, c.path, c.key, resp.StatusCode, b)
		}
		if c.status == 401 && errorBody(t, b)["code"] != "invalid_api_key" {
			t.Errorf("401 body %s", b)
		}
	}
}

func TestAdaptersList(t *testing.T) {
	h := start(t, nil)
	_, b := h.do("GET", "/v1/adapters", "")
	var r struct {
		Object string
		Data   []adapterEntry
		Stats  adapterStatsJSON
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Object != "list" || len(r.Data) != len(testAdapters) || r.Stats.Total != len(testAdapters) {
		t.Fatalf("%s", b)
	}
	for _, a := range r.Data {
		if a.State != "cold" || a.Bytes != 1024 || a.Type != "lora" || a.Object != "adapter" {
			t.Errorf("entry %+v", a)
		}
	}
}

func TestTokenizeDetokenize(t *testing.T) {
	h := start(t, nil)
	var tr openai.TokenizeResponse
	h.postJSON("/tokenize", `{"model":"alpha","prompt":"hi"}`, &tr)
	if tr.Count != 3 || tr.MaxModelLen != 128 || tr.Tokens[0] != 1 || tr.Tokens[1] != 'h'+3 {
		t.Errorf("prompt: %+v", tr)
	}
	h.postJSON("/tokenize", `{"model":"base","prompt":"hi","add_special_tokens":false}`, &tr)
	if tr.Count != 2 {
		t.Errorf("no special: %+v", tr)
	}
	h.postJSON("/tokenize", `{"messages":[{"role":"user","content":"hi"}]}`, &tr)
	if tr.Count != len("user: hi\nassistant:") {
		t.Errorf("messages: %+v", tr)
	}
	var dr openai.DetokenizeResponse
	h.postJSON("/detokenize", `{"model":"base","tokens":[1,107,108]}`, &dr)
	if dr.Prompt != "hi" {
		t.Errorf("detokenize %+v", dr)
	}
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/tokenize", `{"model":"nope","prompt":"x"}`, 404},
		{"/tokenize", `{"model":"base"}`, 400},
		{"/tokenize", `{"prompt":"x","messages":[{"role":"user","content":"x"}]}`, 400},
		{"/tokenize", `{"messages":[{"role":"user","content":"{% raise %}"}]}`, 400},
		{"/detokenize", `{"tokens":[259]}`, 400},
		{"/detokenize", `{"tokens":[-1]}`, 400},
		{"/detokenize", `{"tokens":"abc"}`, 400},
	} {
		resp, b := h.post(c.path, c.body)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d %s", c.path, c.body, resp.StatusCode, b)
		}
		errorBody(t, b)
	}
}
