package unclip

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fakeBundle writes a minimal valid bundle (files are not real ONNX graphs) and returns its folder.
func fakeBundle(t *testing.T, edit func(m map[string]any, files map[string][]byte)) string {
	t.Helper()
	files := map[string][]byte{
		"clip_text.onnx":  []byte("text graph"),
		"clip_image.onnx": []byte("image graph"),
		"decoder.onnx":    []byte("decoder graph"),
		"merges.txt":      []byte("#version\nl o\n"),
		"MODEL_CARD.md":   []byte("# card\n"),
	}
	diff := map[string]any{"schedule": "cosine", "timesteps": 1000, "parameterization": "eps", "sampling_steps": 4, "guidance_scale": 3.0}
	comp := func(file string) map[string]any {
		return map[string]any{"file": file, "sha256": digest(files[file])}
	}
	dec := comp("decoder.onnx")
	dec["diffusion"] = diff
	m := map[string]any{
		"format_version": 1, "name": "fake", "license": "test", "model_card": "MODEL_CARD.md",
		"clip":      map[string]any{"embed_dim": 2, "image_embed_mean": []float64{0, 0}, "image_embed_std": []float64{1, 1}, "text_hidden_dim": 4},
		"image":     map[string]any{"size": 16, "clip_size": 16, "channels": 1, "range": []float64{-1, 1}},
		"tokenizer": map[string]any{"kind": "clip-bpe", "merges": "merges.txt", "num_merges": 1, "context_length": 8},
		"components": map[string]any{
			"clip_text": comp("clip_text.onnx"), "clip_image": comp("clip_image.onnx"), "decoder": dec,
		},
		"files": map[string]any{"merges.txt": digest(files["merges.txt"]), "MODEL_CARD.md": digest(files["MODEL_CARD.md"])},
	}
	if edit != nil {
		edit(m, files)
	}
	dir := t.TempDir()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadBundleVerifies(t *testing.T) {
	dir := fakeBundle(t, nil)
	b, err := LoadBundle(dir)
	if err != nil {
		t.Fatalf("valid bundle: %v", err)
	}
	if got := len(b.Manifest.FileList()); got != 5 {
		t.Fatalf("FileList has %d files, want 5", got)
	}
	// The same bundle from an fs.FS.
	mfs := fstest.MapFS{}
	for _, name := range []string{ManifestName, "clip_text.onnx", "clip_image.onnx", "decoder.onnx", "merges.txt", "MODEL_CARD.md"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		mfs[name] = &fstest.MapFile{Data: data}
	}
	if _, err := LoadBundleFS(mfs, "embedded"); err != nil {
		t.Fatalf("fs.FS bundle: %v", err)
	}
}

func TestLoadBundleFailures(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(m map[string]any, files map[string][]byte)
		after    func(dir string)
		wantFile string // the error must name this file
		wantMsg  string
	}{
		{name: "tampered graph", after: func(dir string) {
			os.WriteFile(filepath.Join(dir, "decoder.onnx"), []byte("decoder graph, changed"), 0o644)
		}, wantFile: "decoder.onnx", wantMsg: "does not match"},
		{name: "tampered merges", after: func(dir string) {
			os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version\nx y\n"), 0o644)
		}, wantFile: "merges.txt", wantMsg: "does not match"},
		{name: "missing file", after: func(dir string) { os.Remove(filepath.Join(dir, "clip_image.onnx")) },
			wantFile: "clip_image.onnx", wantMsg: "cannot open"},
		{name: "no digest", edit: func(m map[string]any, _ map[string][]byte) { delete(m, "files") },
			wantFile: "MODEL_CARD.md", wantMsg: "no sha256"},
		{name: "path outside", edit: func(m map[string]any, _ map[string][]byte) {
			m["components"].(map[string]any)["clip_text"].(map[string]any)["file"] = "../clip_text.onnx"
		}, wantFile: "../clip_text.onnx", wantMsg: "inside the bundle"},
		{name: "format version", edit: func(m map[string]any, _ map[string][]byte) { m["format_version"] = 2 },
			wantFile: ManifestName, wantMsg: "format_version 2"},
		{name: "no decoder", edit: func(m map[string]any, _ map[string][]byte) { delete(m["components"].(map[string]any), "decoder") },
			wantFile: ManifestName, wantMsg: "components.decoder is required"},
		{name: "bad parameterization", edit: func(m map[string]any, _ map[string][]byte) {
			m["components"].(map[string]any)["decoder"].(map[string]any)["diffusion"].(map[string]any)["parameterization"] = "score"
		}, wantFile: ManifestName, wantMsg: `parameterization "score"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeBundle(t, tc.edit)
			if tc.after != nil {
				tc.after(dir)
			}
			_, err := LoadBundle(dir)
			if err == nil {
				t.Fatal("LoadBundle accepted a bad bundle")
			}
			if !strings.Contains(err.Error(), tc.wantFile) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not name %q with %q", err, tc.wantFile, tc.wantMsg)
			}
			var ve *VerifyError
			if tc.wantFile != ManifestName && !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *VerifyError", err)
			}
		})
	}
}

// FuzzReadManifest: no manifest, however corrupt, panics the loader.
func FuzzReadManifest(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "bundles", "tiny", ManifestName))
	if err == nil {
		f.Add(raw)
	}
	f.Add([]byte(`{"format_version":1,"components":{"decoder":{"diffusion":{"schedule":"cosine","timesteps":1e9}}}}`))
	f.Add([]byte(`{"components":{"ar_prior":{"ar":{"kept_dims":3}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{ManifestName: &fstest.MapFile{Data: data}}
		m, err := ReadManifest(fsys, "fuzz")
		if err != nil {
			return
		}
		_ = m.FileList()
		_ = m.CheckFiles(fsys)
	})
}
