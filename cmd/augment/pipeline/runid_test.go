package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/watermark"
)

// TestDefaultRunID checks that the default run id stays the same for the same command and
// changes with anything that changes the images: two default runs used to share UIDs,
// Patient IDs and payload ids.
func TestDefaultRunID(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "CR01.dcm")
	if err := os.WriteFile(src, []byte("image one"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyOf := filepath.Join(dir, "copy", "CR01.dcm")
	os.MkdirAll(filepath.Dir(copyOf), 0o755)
	if err := os.WriteFile(copyOf, []byte("image one"), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := watermark.NewKey([]byte("another-pipeline-key-0123456789ab"))
	if err != nil {
		t.Fatal(err)
	}
	base := func() (Config, []Request) {
		return Config{BundleSHA256: "ab", Seed: 1, Key: testKey(t)},
			[]Request{{Mode: ModeText, Caption: "PA chest radiograph, female, 60-69 years, COVID-19.", Count: 2},
				{Mode: ModeVariation, Sources: []string{src}}}
	}
	id := func(cfg Config, reqs []Request) string {
		t.Helper()
		s, err := DefaultRunID(cfg, reqs)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cfg, reqs := base()
	want := id(cfg, reqs)
	if !strings.HasPrefix(want, "run-1-") || len(want) != len("run-1-")+8 {
		t.Fatalf("run id %q, want run-1-<8 hex digits>", want)
	}
	cfg2, reqs2 := base()
	reqs2[1].Sources = []string{copyOf}
	if got := id(cfg2, reqs2); got != want {
		t.Errorf("the same source elsewhere: %s, want %s", got, want)
	}
	// The default strength, spelled out (the flags' defaults), is the run made before it
	// could be set.
	cfg3, reqs3 := base()
	cfg3.Mark = watermark.Options{PSNR: watermark.DefaultPSNR, SSIM: watermark.DefaultSSIM}
	if got := id(cfg3, reqs3); got != want {
		t.Errorf("the default strength spelled out: %s, want %s", got, want)
	}
	for name, change := range map[string]func(*Config, []Request){
		"prompt":       func(_ *Config, r []Request) { r[0].Caption = "lateral chest radiograph, male, 30-39 years." },
		"count":        func(_ *Config, r []Request) { r[0].Count = 3 },
		"seed":         func(c *Config, _ []Request) { c.Seed = 2 },
		"bundle":       func(c *Config, _ []Request) { c.BundleSHA256 = "cd" },
		"key":          func(c *Config, _ []Request) { c.Key = other },
		"bit depth":    func(c *Config, _ []Request) { c.BitDepth = 8 },
		"steps":        func(c *Config, _ []Request) { c.DecoderSteps = 10 },
		"demographics": func(_ *Config, r []Request) { r[0].Demographics.Sex = "F" },
		"mark psnr":    func(c *Config, _ []Request) { c.Mark.PSNR = 40 },
		"mark ssim":    func(c *Config, _ []Request) { c.Mark.SSIM = 0.97 },
	} {
		c, r := base()
		change(&c, r)
		if got := id(c, r); got == want {
			t.Errorf("changing the %s kept the run id %s", name, got)
		}
	}
	// The source file changed in place.
	if err := os.WriteFile(src, []byte("image two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := id(base()); got == want {
		t.Errorf("a changed source kept the run id %s", got)
	}
	os.Remove(src)
	if _, err := DefaultRunID(base()); err == nil {
		t.Error("a missing source gave a run id")
	}
}

func TestDefaultBatchRunID(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	os.WriteFile(a, []byte("a"), 0o644)
	os.WriteFile(b, []byte("b"), 0o644)
	k := testKey(t).ID()
	ab := DefaultBatchRunID("embed", k, []string{a, b})
	if DefaultBatchRunID("embed", k, []string{a, b}) != ab || !strings.HasPrefix(ab, "embed-") {
		t.Errorf("not stable: %s", ab)
	}
	for name, got := range map[string]string{
		"other files": DefaultBatchRunID("embed", k, []string{b}),
		"other order": DefaultBatchRunID("embed", k, []string{b, a}),
		"other key":   DefaultBatchRunID("embed", "0123456789abcdef", []string{a, b}),
		"no key":      DefaultBatchRunID("embed", "", []string{a, b}),
	} {
		if got == ab {
			t.Errorf("%s kept the run id %s", name, got)
		}
	}
}
