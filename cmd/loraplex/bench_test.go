package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/loadtest"
	"github.com/loraplex/loraplex/training/jobs"
)

// bench at tiny scale: one row per scenario, every request answered, and
// the JSON reports agree with the table.
func TestBenchTiny(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "bench.md")
	out, err := run(t, "bench", "--shape", "tiny", "--adapters", "0,1,4", "--requests", "6", "--concurrency", "3",
		"--prompt-tokens", "8", "--output-tokens", "4", "--threads", "2", "--max-loaded-adapters", "2",
		"--out", md, "--json-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(md)
	if err != nil || string(file) != out {
		t.Errorf("--out differs from stdout (%v)", err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) == 11 {
			rows[strings.TrimSpace(cells[1])] = line
			for i, c := range cells[2:10] {
				cells[i+2] = strings.TrimSpace(c)
			}
			if name := strings.TrimSpace(cells[1]); name != "scenario" && !strings.HasPrefix(name, "---") {
				if cells[3] != "6" || cells[9] != "0" {
					t.Errorf("%s: %s requests, %s errors; want 6 and 0", name, cells[3], cells[9])
				}
			}
		}
	}
	for i, name := range []string{"base only", "1 adapter", "4 adapters"} {
		if rows[name] == "" {
			t.Errorf("no row %q in\n%s", name, out)
		}
		f, err := os.Open(filepath.Join(dir, "adapters-"+[]string{"0", "1", "4"}[i]+".json"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := loadtest.ReadJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Succeeded != 6 || rep.TokensOut != 24 || len(rep.PerAdapter) != max(1, []int{0, 1, 4}[i]) {
			t.Errorf("%s: %d ok, %d tokens, %d adapters used", name, rep.Succeeded, rep.TokensOut, len(rep.PerAdapter))
		}
	}
	if !strings.Contains(out, "at most 2 adapters loaded") {
		t.Errorf("the note lacks the registry budget:\n%s", out)
	}
}

// bench's open loop with a ramp and the serving options: every request is
// answered and the note and the step table describe the run.
func TestBenchTinyOpenLoop(t *testing.T) {
	out, err := run(t, "bench", "--shape", "tiny", "--adapters", "2", "--requests", "6", "--concurrency", "2",
		"--request-rate", "1000", "--ramp-up", "1ms", "--prompt-tokens", "8", "--output-tokens", "3", "--threads", "2",
		"--prefill-first", "--adapter-bf16", "--quant-head", "nf4")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 2 adapters | 2 | 6 |", "Open loop, Poisson arrivals at 1e+03 requests/s, at most 2 in flight, ramped up over 1ms",
		"--quant-head nf4, --adapter-bf16; --prefill-first", "prompts of 8 tokens", "| scenario | steps |"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// bench --with-training at tiny scale: each scenario has a row alone and a
// row beside a fine-tuning job, every request is answered, each job was a
// LoRA r=16 on all seven projections that trained and ended cancelled, and
// the temporary model, store and training files are gone.
func TestBenchTinyWithTraining(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out, err := run(t, "bench", "--shape", "tiny", "--adapters", "0,2", "--requests", "6", "--concurrency", "3",
		"--prompt-tokens", "8", "--output-tokens", "4", "--threads", "2", "--with-training", "--train-share", "0.2",
		"--json-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(out, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 15 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[1] == "scenario" || strings.HasPrefix(cells[1], "---") {
			continue
		}
		got = append(got, cells[1]+"/"+cells[10])
		if cells[3] != "6" || cells[9] != "0" {
			t.Errorf("%s: %s requests, %s errors; want 6 and 0", line, cells[3], cells[9])
		}
		if ratio, tps := cells[12], cells[13]; (cells[10] == "running") == (ratio == "-" || tps == "-") {
			t.Errorf("%s: TPOT ratio %q and trained tok/s %q belong to the rows with a job", line, ratio, tps)
		}
	}
	if want := []string{"base only/none", "base only/running", "2 adapters/none", "2 adapters/running"}; !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q in\n%s", got, want, out)
	}
	for _, want := range []string{"--train-threads 1, --train-share 0.2", "| loop busy | fine-tuning job |"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, n := range []string{"0", "2"} {
		f, err := os.Open(filepath.Join(dir, "adapters-"+n+"-training.json"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := loadtest.ReadJSON(f)
		f.Close()
		if err != nil || rep.Succeeded != 6 {
			t.Errorf("scenario %s beside the job: %v, %+v", n, err, rep)
		}
		data, err := os.ReadFile(filepath.Join(dir, "adapters-"+n+"-job.json"))
		if err != nil {
			t.Fatal(err)
		}
		var j jobs.Job
		if err := json.Unmarshal(data, &j); err != nil {
			t.Fatal(err)
		}
		if j.Status != jobs.StatusCancelled || j.TrainedTokens == nil || *j.TrainedTokens <= 0 || j.FineTunedModel != nil ||
			j.Adapter.R != 16 || len(j.Adapter.TargetModules) != 7 {
			t.Errorf("scenario %s's job: %s", n, data)
		}
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("temporary files left: %v %v", left, err)
	}
}
