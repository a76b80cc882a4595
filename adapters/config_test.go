package adapters

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestConfigGolden pins the adapter_config.json text SaveLoRA and
// SavePromptTuning write: the key set and value types PEFT expects.
func TestConfigGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		cfg  PEFTConfig
	}{
		{"lora_config.golden.json", PEFTConfig{PeftType: TypeLoRA, TaskType: TaskCausalLM, InferenceMode: true, BaseModel: "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
			R: 16, Alpha: 32, UseRSLoRA: true, Dropout: 0.05, TargetModules: Modules{Names: []string{"q_proj", "v_proj"}},
			RankPattern: []RankRule{{"v_proj", 8}, {"q_proj", 4}}, AlphaPattern: []AlphaRule{{"q_proj", 2.5}}}},
		{"dora_config.golden.json", PEFTConfig{PeftType: TypeLoRA, TaskType: TaskCausalLM, InferenceMode: true, R: 8, Alpha: 16,
			TargetModules: Modules{Regex: AllLinear}, UseDoRA: true, ModulesToSave: []string{"embed_tokens", "lm_head"}, EnsureWeightTying: true}},
		{"prompt_config.golden.json", PEFTConfig{PeftType: TypePromptTuning, TaskType: TaskCausalLM, InferenceMode: true,
			NumVirtualTokens: 20, TokenDim: 576, NumTransformerSubmodules: 1, NumAttentionHeads: 9, NumLayers: 30}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.cfg.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("MarshalJSON:\n%s\nwant (%s):\n%s", got, path, want)
			}
			back, err := ParseConfig(got)
			if err != nil {
				t.Fatal(err)
			}
			if tc.cfg.PeftType == TypePromptTuning {
				tc.cfg.PromptTuningInit = "RANDOM"
			}
			if !reflect.DeepEqual(*back, tc.cfg) {
				t.Errorf("parse(marshal(c)) = %+v, want %+v", *back, tc.cfg)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(fixtures.Root(), "fixtures", "lora-r8", ConfigFile)); err == nil {
		f.Add(b)
	}
	for _, name := range []string{"lora_config.golden.json", "dora_config.golden.json", "prompt_config.golden.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"peft_type":"LORA","target_modules":"all-linear","layers_to_transform":null}`,
		`{"peft_type":"lora","r":4.0,"lora_alpha":8.5,"target_modules":".*\\.(q|v)_proj","exclude_modules":["o_proj"]}`,
		`{"peft_type":"LORA","target_modules":["q_proj"],"layers_to_transform":3,"layers_pattern":["layers"],"rank_pattern":{"a":1,"a":2}}`,
		`{"peft_type":"PROMPT_TUNING","num_virtual_tokens":8,"token_dim":64,"prompt_tuning_init":"TEXT","prompt_tuning_init_text":"hi"}`,
		`{"peft_type":"LORA","use_dora":true}`, `[]`, `null`, `{"peft_type":7}`,
		`{"peft_type":"LORA","use_dora":true,"modules_to_save":["lm_head","model.embed_tokens"]}`,
		`{"peft_type":"LORA","modules_to_save":"embed_tokens","ensure_weight_tying":true}`, `{"peft_type":"LORA","modules_to_save":["norm"]}`,
		`{"peft_type":"LORA","modules_to_save":[]}`, `{"peft_type":"PROMPT_TUNING","num_virtual_tokens":2,"token_dim":8,"modules_to_save":["lm_head"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errors.Is(err, ErrConfig) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		// Whatever parses must survive being written and read back.
		out, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	})
}
