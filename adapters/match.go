package adapters

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dlclark/regexp2"

	"github.com/loraplex/loraplex/inference/model"
)

// Full module names as PEFT sees them on a Llama-family *ForCausalLM.
const (
	lmHead      = "lm_head"
	embedTokens = "model.embed_tokens"
)

// moduleName is the full PEFT module name of a decoder projection, e.g.
// "model.layers.3.self_attn.q_proj".
func moduleName(layer int, m model.Module) string {
	return "model.layers." + strconv.Itoa(layer) + "." + parentOf(m) + "." + m.String()
}

func parentOf(m model.Module) string {
	if m <= model.O {
		return "self_attn"
	}
	return "mlp"
}

// patternTimeout bounds one regular-expression match: PEFT patterns are
// Python regexes, evaluated by a backtracking engine, and come from files
// users upload.
const patternTimeout = 100 * time.Millisecond

// matcher applies a config's module-selection rules the way PEFT's
// check_target_module_exists and get_pattern_key do.
type matcher struct {
	c       *PEFTConfig
	targets []string // list form, with all-linear expanded
	target  *regexp2.Regexp
	exclude *regexp2.Regexp
	layers  []*regexp2.Regexp
	ranks   []*regexp2.Regexp
	alphas  []*regexp2.Regexp
}

func newMatcher(c *PEFTConfig) (*matcher, error) {
	m := &matcher{c: c, targets: c.TargetModules.Names}
	var err error
	switch {
	case strings.EqualFold(c.TargetModules.Regex, AllLinear):
		// PEFT expands the shorthand to the names of every linear layer
		// except the output head, then matches them as a list.
		m.targets = make([]string, model.NumModules)
		for i := range model.NumModules {
			m.targets[i] = i.String()
		}
	case c.TargetModules.Regex != "":
		if m.target, err = compileFull("target_modules", c.TargetModules.Regex); err != nil {
			return nil, err
		}
	}
	if c.ExcludeModules.Regex != "" {
		if m.exclude, err = compileFull("exclude_modules", c.ExcludeModules.Regex); err != nil {
			return nil, err
		}
	}
	if len(c.LayersToTransform) > 0 {
		if len(c.LayersPattern) == 0 {
			m.layers = []*regexp2.Regexp{mustCompile(`\A.*\.[^.]*\.(\d+)\.`)}
		}
		for _, p := range c.LayersPattern {
			if _, err := compile("layers_pattern", p); err != nil {
				return nil, err
			}
			m.layers = append(m.layers, mustCompile(`\A.*\.(?:`+p+`)\.(\d+)\.`))
		}
	}
	for _, r := range c.RankPattern {
		re, err := compileSuffix("rank_pattern", r.Pattern)
		if err != nil {
			return nil, err
		}
		m.ranks = append(m.ranks, re)
	}
	for _, a := range c.AlphaPattern {
		re, err := compileSuffix("alpha_pattern", a.Pattern)
		if err != nil {
			return nil, err
		}
		m.alphas = append(m.alphas, re)
	}
	return m, nil
}

func compile(field, pattern string) (*regexp2.Regexp, error) {
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %q is not a valid regular expression: %v", ErrConfig, field, pattern, err)
	}
	re.MatchTimeout = patternTimeout
	return re, nil
}

// mustCompile compiles a pattern whose user part was already checked on its
// own, so the wrapped form cannot fail.
func mustCompile(pattern string) *regexp2.Regexp {
	re := regexp2.MustCompile(pattern, regexp2.None)
	re.MatchTimeout = patternTimeout
	return re
}

// compileFull gives Python's re.fullmatch. The pattern is compiled alone
// first, so a stray parenthesis cannot escape the anchoring group.
func compileFull(field, pattern string) (*regexp2.Regexp, error) {
	if _, err := compile(field, pattern); err != nil {
		return nil, err
	}
	return mustCompile(`\A(?:` + pattern + `)\z`), nil
}

// compileSuffix gives PEFT's pattern-key rule re.match(rf"(.*\.)?({key})$").
func compileSuffix(field, pattern string) (*regexp2.Regexp, error) {
	if _, err := compile(field, pattern); err != nil {
		return nil, err
	}
	return mustCompile(`\A(.*\.)?(` + pattern + `)\z`), nil
}

func match(re *regexp2.Regexp, field, name string) (bool, error) {
	ok, err := re.MatchString(name)
	if err != nil {
		return false, fmt.Errorf("%w: %s: matching %q: %v", ErrConfig, field, name, err)
	}
	return ok, nil
}

func listMatch(list []string, name string) bool {
	for _, e := range list {
		if name == e || strings.HasSuffix(name, "."+e) {
			return true
		}
	}
	return false
}

// selects reports whether the config puts LoRA on the module with the given
// full name.
func (m *matcher) selects(name string) (bool, error) {
	if m.exclude != nil {
		ok, err := match(m.exclude, "exclude_modules", name)
		if err != nil || ok {
			return false, err
		}
	} else if listMatch(m.c.ExcludeModules.Names, name) {
		return false, nil
	}
	if m.target != nil {
		return match(m.target, "target_modules", name)
	}
	if slices.Contains(m.targets, name) {
		// A full name listed explicitly ignores layers_to_transform, as in PEFT.
		return true, nil
	}
	if !listMatch(m.targets, name) {
		return false, nil
	}
	if m.layers == nil {
		return true, nil
	}
	for _, re := range m.layers {
		mt, err := re.FindStringMatch(name)
		if err != nil {
			return false, fmt.Errorf("%w: layers_pattern: matching %q: %v", ErrConfig, name, err)
		}
		if mt == nil {
			continue
		}
		idx, err := strconv.Atoi(mt.GroupByNumber(1).String())
		if err != nil {
			return false, nil
		}
		return slices.Contains(m.c.LayersToTransform, idx), nil
	}
	return false, nil
}

// rankAlpha returns the rank and alpha for a module: the first matching
// rank_pattern and alpha_pattern entries, else r and lora_alpha.
func (m *matcher) rankAlpha(name string) (r int, alpha float64, err error) {
	r, alpha = m.c.R, m.c.Alpha
	for i, re := range m.ranks {
		ok, err := match(re, "rank_pattern", name)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			r = m.c.RankPattern[i].R
			break
		}
	}
	for i, re := range m.alphas {
		ok, err := match(re, "alpha_pattern", name)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			alpha = m.c.AlphaPattern[i].Alpha
			break
		}
	}
	return r, alpha, nil
}

// describe says where r and alpha for a module come from, for errors.
func (m *matcher) describe(name string) string {
	for i, re := range m.ranks {
		if ok, _ := re.MatchString(name); ok {
			return fmt.Sprintf("rank_pattern[%q]=%d", m.c.RankPattern[i].Pattern, m.c.RankPattern[i].R)
		}
	}
	return fmt.Sprintf("r=%d", m.c.R)
}

// saved says which modules a config's modules_to_save replaces.
type saved struct{ head, embed bool }

// peftModules are the module names of a PEFT-wrapped Llama-family model
// with LoRA injected, one decoder layer standing for all: what PEFT checks
// modules_to_save entries against.
var peftModules = func() []string {
	p := strings.TrimSuffix(peftPrefix, ".")
	names := []string{"base_model", p, p + ".model", p + ".model.layers", p + ".model.norm", p + ".model.rotary_emb", p + "." + embedTokens, p + "." + lmHead}
	layer := p + ".model.layers.0"
	names = append(names, layer, layer+".self_attn", layer+".mlp", layer+".mlp.act_fn", layer+".input_layernorm", layer+".post_attention_layernorm")
	for m := range model.NumModules {
		name := p + "." + moduleName(0, m)
		names = append(names, name, name+".base_layer")
		for _, sub := range []string{"lora_A", "lora_B", "lora_dropout", "lora_magnitude_vector"} {
			names = append(names, name+"."+sub, name+"."+sub+".default")
		}
	}
	return names
}()

// savedModules resolves modules_to_save entries the way PEFT does — an entry
// selects every module whose full name ends with it — and accepts only
// entries that reach the output head or the token embedding and nothing
// else: a per-adapter copy of any other module would fork the shared base.
func savedModules(entries []string) (saved, error) {
	var s saved
	for _, e := range entries {
		reach := saved{}
		for _, name := range peftModules {
			if !strings.HasSuffix(name, e) {
				continue
			}
			switch strings.TrimPrefix(name, peftPrefix) {
			case lmHead:
				reach.head = true
			case embedTokens:
				reach.embed = true
			default:
				return saved{}, fmt.Errorf("%w: modules_to_save entry %q selects %s; only full copies of lm_head and embed_tokens are served per adapter", ErrUnsupported, e, strings.TrimPrefix(name, peftPrefix))
			}
		}
		if !reach.head && !reach.embed {
			return saved{}, fmt.Errorf("%w: modules_to_save entry %q names no module loraplex serves per adapter; only lm_head and embed_tokens copies are", ErrUnsupported, e)
		}
		s.head, s.embed = s.head || reach.head, s.embed || reach.embed
	}
	return s, nil
}
