package hub

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseRepo checks that no accepted repository id can place files
// outside the cache directory.
func FuzzParseRepo(f *testing.F) {
	for _, s := range []string{"acme/tiny", "hf:acme/tiny", "gpt2", "../x", "a/../b", "a/b/c", "a\\b", ".", "a/."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		repo, err := ParseRepo(s)
		if err != nil {
			return
		}
		cache := filepath.Join("cache", "root")
		dir := SnapshotDir(cache, repo, "refs/pr/1")
		rel, err := filepath.Rel(cache, dir)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Count(rel, string(filepath.Separator)) != 1 || !strings.HasSuffix(dir, "refs--pr--1") {
			t.Fatalf("repo %q maps to %s, outside the cache", repo, dir)
		}
		if strings.ContainsAny(repo, "\\?#% ") {
			t.Fatalf("repo %q has characters that change the URL", repo)
		}
	})
}
