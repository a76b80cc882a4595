package registry

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/model"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"sql-lora", true},
		{"org/name", true},
		{"ft:gpt-4o-mini-2024-07-18:acme:support:9pQKzT1", true},
		{"ft:TinyLlama/TinyLlama-1.1B:acme:x:1", true},
		{"A.b_c-1", true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"", false},
		{"..", false},
		{"../x", false},
		{"a/..", false},
		{"a/../b", false},
		{".hidden", false},
		{"org/.x", false},
		{"/abs", false},
		{"a/", false},
		{"a//b", false},
		{"a/b/c", false},
		{"a b", false},
		{"a%2Fb", false},
		{`a\b`, false},
		{"é", false},
		{"a\x00b", false},
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrName) {
			t.Errorf("ValidateName(%q): %v is not ErrName", tc.name, err)
		}
	}
}

func FuzzName(f *testing.F) {
	for _, s := range []string{"a", "org/name", "ft:a:b:c", "..", "a/../b", "%2F", "a%3Ab", ".x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		enc := encodeName(name)
		if strings.ContainsAny(enc, `/\:`) || strings.HasPrefix(enc, ".") || len(enc) > 255 {
			t.Fatalf("%q encodes to unsafe directory name %q", name, enc)
		}
		if back, ok := decodeName(enc); !ok || back != name {
			t.Fatalf("%q -> %q -> %q, %v", name, enc, back, ok)
		}
	})
}

func TestStoreLifecycle(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src1, h1 := writeSrc(t, 1, 1)
	src2, h2 := writeSrc(t, 1, 2)
	for _, name := range []string{"org/name", "ft:base:sfx:1"} {
		h, err := s.Add(name, src1)
		if err != nil || h != h1 {
			t.Fatalf("Add(%q) = %s, %v; want hash %s", name, h, err, h1)
		}
	}
	if _, err := s.Add("org/name", src2); !errors.Is(err, ErrExists) {
		t.Errorf("second Add: %v", err)
	}
	// One flat directory per adapter, whatever the name.
	ents, _ := os.ReadDir(s.Dir())
	if len(ents) != 2 || ents[0].Name() != "ft%3Abase%3Asfx%3A1" || ents[1].Name() != "org%2Fname" {
		t.Errorf("store entries %v", ents)
	}
	if names, _ := s.List(); len(names) != 2 || names[0] != "ft:base:sfx:1" || names[1] != "org/name" {
		t.Errorf("List = %q", names)
	}
	if h, err := s.Replace("org/name", src2); err != nil || h != h2 {
		t.Fatalf("Replace = %s, %v", h, err)
	}
	p, err := s.Path("org/name")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := adapters.Hash(p); h != h2 {
		t.Error("the replaced directory does not hold the new content")
	}
	if h, _ := s.Hash("org/name"); h != h2 {
		t.Error("Hash is stale after Replace")
	}
	if err := s.Remove("org/name"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("org/name"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := s.Path("org/name"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Path after Remove: %v", err)
	}
	if _, err := s.Path("../x"); !errors.Is(err, ErrName) {
		t.Errorf("Path(../x): %v", err)
	}
	// Nothing but the remaining adapter is left: no staging areas.
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 1 {
		t.Errorf("store holds %d entries, want 1", len(ents))
	}
}

func TestStoreFailuresLeaveNothing(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := s.Put("a", false, func(dir string) error {
		os.Mkdir(dir, 0o755)
		os.WriteFile(filepath.Join(dir, adapters.ConfigFile), []byte("{}"), 0o644)
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("Put: %v", err)
	}
	if _, err := s.Put("a", false, func(dir string) error { return os.Mkdir(dir, 0o755) }); !errors.Is(err, adapters.ErrNotAdapter) {
		t.Errorf("Put without a config: %v", err)
	}
	if _, err := s.Add("a", t.TempDir()); !errors.Is(err, adapters.ErrNotAdapter) {
		t.Errorf("Add of an empty directory: %v", err)
	}
	if _, err := s.Add("a/../../x", t.TempDir()); !errors.Is(err, ErrName) {
		t.Errorf("Add with a bad name: %v", err)
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 0 {
		t.Errorf("failed writes left %d entries", len(ents))
	}
}

func TestOpenStoreCleansUp(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".tmp-123", "adapter"), 0o755)
	os.MkdirAll(filepath.Join(dir, "keep"), 0o755)
	os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o644)
	os.MkdirAll(filepath.Join(dir, "bad name"), 0o755)
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !os.IsNotExist(err) {
		t.Error("leftover staging area survived")
	}
	if names, _ := s.List(); len(names) != 1 || names[0] != "keep" {
		t.Errorf("List = %q, want [keep]", names)
	}
}

// TestStorePutSaveLoRA stores a real adapter through Put and loads it back
// with the PEFT loader.
func TestStorePutSaveLoRA(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := &config.Config{Hidden: 64, Intermediate: 160, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16}
	a := randomLoRA(base, 4, 8, rand.New(rand.NewPCG(1, 1)))
	hash, err := s.Put("org/lora", false, func(dir string) error {
		return adapters.SaveLoRA(dir, &adapters.PEFTConfig{R: 4, Alpha: 8, BaseModel: "tiny-llama", TargetModules: adapters.Modules{Regex: adapters.AllLinear}}, a)
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Prepare() // as the loader does
	var warned []string
	r := New(s, adapters.NewLoader(base, "other-base", func(id string, w []string) { warned = append(warned, w...) }), Config{})
	defer r.Close()
	h := mustAcquire(t, r, "org/lora")
	defer h.Release()
	got := h.Adapter()
	if got.ID != adapters.ID("org/lora", hash) || got.Bytes() != a.Bytes() || got.LoRA[1][model.Down].B[5] != a.LoRA[1][model.Down].B[5] {
		t.Errorf("stored adapter %s differs from the saved one", got.ID)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "tiny-llama") {
		t.Errorf("warnings %q, want one about the base model", warned)
	}
}
