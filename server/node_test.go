package server

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOfficialNodeSDK runs testdata/openai_stream.cjs, which uses the
// official openai npm package, against the server. It needs node and the
// package: set LORAPLEX_NODE_MODULES to a node_modules directory holding
// openai (or have it resolvable from the test directory); otherwise it skips.
func TestOfficialNodeSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found; skipping the official SDK test")
	}
	env := os.Environ()
	if dir := os.Getenv("LORAPLEX_NODE_MODULES"); dir != "" {
		env = append(env, "NODE_PATH="+dir)
	}
	probe := exec.Command(node, "-e", "require.resolve('openai')")
	probe.Env = env
	if err := probe.Run(); err != nil {
		t.Skip("the openai npm package is not installed (set LORAPLEX_NODE_MODULES); skipping")
	}
	h := start(t, func(c *Config, _ *fakeEngine, _ *Server) { c.APIKey = "test-key" })
	script, err := filepath.Abs(filepath.Join("testdata", "openai_stream.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, script, h.url+"/v1", "alpha")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s\n%s", err, out, stderr)
	}
	var got struct {
		Role, Content, Finish, Plain, PlainFinish string
		Usage                                     struct{ Prompt_tokens, Completion_tokens, Total_tokens int }
		Models                                    []string
		ErrorStatus                               int
		ErrorCode                                 string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "[alpha] hello world."
	if got.Role != "assistant" || got.Content != want || got.Finish != "stop" || got.Usage.Completion_tokens != len(want) ||
		got.Usage.Total_tokens != got.Usage.Prompt_tokens+len(want) || got.Plain != "[alph" || got.PlainFinish != "length" ||
		len(got.Models) != 1+len(testAdapters) || got.ErrorStatus != 404 || got.ErrorCode != "model_not_found" {
		t.Errorf("the SDK saw %+v", got)
	}
}
