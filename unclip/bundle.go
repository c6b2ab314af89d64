package unclip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// FormatVersion is the bundle format this package reads (docs/bundle.md).
const FormatVersion = 1

// Sanity bounds on manifest numbers (a corrupt manifest must not make the runtime allocate wildly).
const (
	maxTimesteps = 100_000
	maxImageSize = 8192
)

// ManifestName is the name of a bundle's manifest file.
const ManifestName = "bundle.json"

// Manifest is the content of bundle.json.
type Manifest struct {
	FormatVersion int               `json:"format_version"`
	Name          string            `json:"name"`
	Description   string            `json:"description,omitempty"`
	License       string            `json:"license,omitempty"`
	ModelCard     string            `json:"model_card,omitempty"`
	Created       string            `json:"created,omitempty"`
	CLIP          CLIPSpec          `json:"clip"`
	Image         ImageSpec         `json:"image"`
	Tokenizer     TokenizerSpec     `json:"tokenizer"`
	Components    Components        `json:"components"`
	Files         map[string]string `json:"files,omitempty"`
}

// CLIPSpec describes the CLIP embedding space of a bundle.
type CLIPSpec struct {
	EmbedDim       int       `json:"embed_dim"`
	ImageEmbedMean []float32 `json:"image_embed_mean"`
	ImageEmbedStd  []float32 `json:"image_embed_std"`
	TextEmbedMean  []float32 `json:"text_embed_mean"`
	TextEmbedStd   []float32 `json:"text_embed_std"`
	TextHiddenDim  int       `json:"text_hidden_dim"`
}

// ImageSpec is the image preprocessing of a bundle.
type ImageSpec struct {
	Size        int        `json:"size"`
	CLIPSize    int        `json:"clip_size"`
	Channels    int        `json:"channels"`
	Window      string     `json:"window"`
	Percentiles []float64  `json:"percentiles"`
	Pad         string     `json:"pad"`
	Resize      string     `json:"resize"`
	Range       [2]float64 `json:"range"`
}

// TokenizerSpec names the tokenizer of a bundle.
type TokenizerSpec struct {
	Kind          string `json:"kind"` // "clip-bpe" or "wordpiece"
	Merges        string `json:"merges,omitempty"`
	Vocab         string `json:"vocab,omitempty"` // wordpiece: BERT's vocab.txt
	NumMerges     int    `json:"num_merges"`
	ContextLength int    `json:"context_length"`
	Lowercase     bool   `json:"lowercase"`
}

// Components lists the ONNX graphs of a bundle.
type Components struct {
	CLIPText   *Component  `json:"clip_text"`
	CLIPImage  *Component  `json:"clip_image"`
	Prior      *Component  `json:"prior,omitempty"`
	ARPrior    *Component  `json:"ar_prior,omitempty"`
	Decoder    *Component  `json:"decoder"`
	Upsamplers []Component `json:"upsamplers,omitempty"`
}

// TensorSpec describes one graph input or output.
type TensorSpec struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []any  `json:"shape"`
}

// Component is one ONNX graph and the numbers its sampler needs.
type Component struct {
	File       string         `json:"file"`
	SHA256     string         `json:"sha256"`
	Inputs     []TensorSpec   `json:"inputs"`
	Outputs    []TensorSpec   `json:"outputs"`
	Diffusion  *DiffusionSpec `json:"diffusion,omitempty"`
	Candidates int            `json:"candidates,omitempty"`
	Clamp      float64        `json:"clamp,omitempty"`
	AR         *ARSpec        `json:"ar,omitempty"`
	InSize     int            `json:"in_size,omitempty"`
	OutSize    int            `json:"out_size,omitempty"`
	Augment    map[string]any `json:"augment,omitempty"`
}

// DiffusionSpec is the training schedule and sampling defaults of a diffusion component.
type DiffusionSpec struct {
	Schedule         string     `json:"schedule"`
	Timesteps        int        `json:"timesteps"`
	BetaStart        float64    `json:"beta_start,omitempty"`
	BetaEnd          float64    `json:"beta_end,omitempty"`
	Parameterization string     `json:"parameterization"`
	SamplingSteps    int        `json:"sampling_steps"`
	GuidanceScale    float64    `json:"guidance_scale"`
	Eta              float64    `json:"eta"`
	ClipX0           bool       `json:"clip_x0"`
	ClipRange        [2]float64 `json:"clip_range"`
}

// ARSpec holds the PCA and quantisation tables of the autoregressive prior.
type ARSpec struct {
	PCAMean       []float32   `json:"pca_mean"`
	PCAComponents [][]float32 `json:"pca_components"`
	KeptDims      int         `json:"kept_dims"`
	Levels        int         `json:"levels"`
	CoefMin       []float64   `json:"coef_min"`
	CoefMax       []float64   `json:"coef_max"`
	DotLevels     int         `json:"dot_levels"`
	DotMin        float64     `json:"dot_min"`
	DotMax        float64     `json:"dot_max"`
	DotHistogram  []float64   `json:"dot_histogram"`
}

// Bundle is a verified model bundle: its manifest and the filesystem that holds its files.
type Bundle struct {
	Manifest Manifest
	// FS holds the bundle's files; Dir is the folder when loaded from disk ("" for an fs.FS).
	FS  fs.FS
	Dir string
}

// BundleFile is one file a manifest names, with its expected digest.
type BundleFile struct {
	Role   string // "decoder", "upsamplers[0]", "tokenizer.merges", "model_card", "files"
	Name   string
	SHA256 string
}

// VerifyError reports the files of a bundle that failed verification.
type VerifyError struct {
	Bundle   string
	Problems []FileProblem
}

// FileProblem is one file's verification failure.
type FileProblem struct {
	File    string `json:"file"`
	Problem string `json:"problem"`
}

func (e *VerifyError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.File + ": " + p.Problem
	}
	return fmt.Sprintf("bundle %s failed verification: %s", e.Bundle, strings.Join(parts, "; "))
}

// LoadBundle reads and verifies the bundle in folder dir.
func LoadBundle(dir string) (*Bundle, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("load bundle %s: not a folder", dir)
	}
	b, err := LoadBundleFS(os.DirFS(dir), dir)
	if err != nil {
		return nil, err
	}
	b.Dir = dir
	return b, nil
}

// LoadBundleFS reads and verifies the bundle at the root of fsys; label names it in errors.
func LoadBundleFS(fsys fs.FS, label string) (*Bundle, error) {
	m, err := ReadManifest(fsys, label)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Manifest: *m, FS: fsys}
	if err := b.Verify(); err != nil {
		return nil, err
	}
	return b, nil
}

// ReadManifest parses and checks bundle.json without verifying the files' digests.
func ReadManifest(fsys fs.FS, label string) (*Manifest, error) {
	raw, err := fs.ReadFile(fsys, ManifestName)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: read %s: %w", label, ManifestName, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("bundle %s: parse %s: %w", label, ManifestName, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("bundle %s: %s: %w", label, ManifestName, err)
	}
	return &m, nil
}

// Validate checks the manifest's internal consistency.
func (m *Manifest) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.FormatVersion != FormatVersion {
		bad("format_version %d is not supported (this runtime reads %d)", m.FormatVersion, FormatVersion)
	}
	d := m.CLIP.EmbedDim
	if d <= 0 {
		bad("clip.embed_dim must be positive")
	}
	for name, v := range map[string][]float32{"image_embed_mean": m.CLIP.ImageEmbedMean, "image_embed_std": m.CLIP.ImageEmbedStd} {
		if len(v) != d {
			bad("clip.%s has %d values, want embed_dim %d", name, len(v), d)
		}
	}
	if m.Image.Size <= 0 || m.Image.Size > maxImageSize || m.Image.Channels <= 0 || m.Image.Channels > 4 {
		bad("image.size must be in 1..%d and image.channels in 1..4", maxImageSize)
	}
	if m.Image.CLIPSize <= 0 {
		m.Image.CLIPSize = m.Image.Size
	}
	if m.Image.Range == [2]float64{} {
		m.Image.Range = [2]float64{-1, 1}
	}
	switch m.Tokenizer.Kind {
	case "clip-bpe":
		if m.Tokenizer.Merges == "" {
			bad("tokenizer.merges is missing")
		}
	case "wordpiece":
		if m.Tokenizer.Vocab == "" {
			bad("tokenizer.vocab is missing")
		}
	default:
		bad("tokenizer.kind %q is not supported (clip-bpe or wordpiece)", m.Tokenizer.Kind)
	}
	if m.Tokenizer.ContextLength < 2 {
		bad("tokenizer.context_length must be at least 2")
	}
	c := m.Components
	for _, req := range []struct {
		name string
		c    *Component
	}{{"clip_text", c.CLIPText}, {"clip_image", c.CLIPImage}, {"decoder", c.Decoder}} {
		if req.c == nil {
			bad("components.%s is required", req.name)
		}
	}
	for role, comp := range m.components() {
		if comp.File == "" {
			bad("components.%s.file is missing", role)
		}
		if comp.SHA256 == "" {
			bad("components.%s.sha256 is missing", role)
		}
		if comp.Diffusion != nil {
			if err := comp.Diffusion.validate(); err != nil {
				bad("components.%s.diffusion: %w", role, err)
			}
		}
	}
	if c.Decoder != nil && c.Decoder.Diffusion == nil {
		bad("components.decoder.diffusion is required")
	}
	if c.Prior != nil && c.Prior.Diffusion == nil {
		bad("components.prior.diffusion is required")
	}
	for i, u := range c.Upsamplers {
		if u.Diffusion == nil {
			bad("components.upsamplers[%d].diffusion is required", i)
		}
		if u.InSize <= 0 || u.OutSize <= 0 || u.OutSize > maxImageSize {
			bad("components.upsamplers[%d]: in_size and out_size must be in 1..%d", i, maxImageSize)
		}
	}
	if c.ARPrior != nil {
		if a := c.ARPrior.AR; a == nil {
			bad("components.ar_prior.ar is required")
		} else if err := a.validate(d); err != nil {
			bad("components.ar_prior.ar: %w", err)
		}
	}
	return errors.Join(errs...)
}

func (s *DiffusionSpec) validate() error {
	switch s.Schedule {
	case "cosine", "linear":
	default:
		return fmt.Errorf("schedule %q is not supported (cosine or linear)", s.Schedule)
	}
	switch s.Parameterization {
	case "eps", "x0", "v":
	default:
		return fmt.Errorf("parameterization %q is not supported (eps, x0 or v)", s.Parameterization)
	}
	if s.Timesteps < 2 || s.Timesteps > maxTimesteps {
		return fmt.Errorf("timesteps %d must be in 2..%d", s.Timesteps, maxTimesteps)
	}
	if s.SamplingSteps < 1 || s.SamplingSteps > s.Timesteps {
		return fmt.Errorf("sampling_steps %d must be in 1..%d", s.SamplingSteps, s.Timesteps)
	}
	if s.Schedule == "linear" && !(s.BetaStart > 0 && s.BetaEnd >= s.BetaStart && s.BetaEnd < 1) {
		return fmt.Errorf("linear schedule needs 0 < beta_start <= beta_end < 1")
	}
	if s.GuidanceScale == 0 {
		s.GuidanceScale = 1
	}
	return nil
}

func (a *ARSpec) validate(d int) error {
	k := a.KeptDims
	switch {
	case k <= 0 || k > d:
		return fmt.Errorf("kept_dims %d must be in 1..%d", k, d)
	case len(a.PCAMean) != d:
		return fmt.Errorf("pca_mean has %d values, want %d", len(a.PCAMean), d)
	case len(a.PCAComponents) < k:
		return fmt.Errorf("pca_components has %d rows, want %d", len(a.PCAComponents), k)
	case len(a.CoefMin) < k || len(a.CoefMax) < k:
		return fmt.Errorf("coef_min/coef_max need %d values", k)
	case a.Levels < 2 || a.DotLevels < 2:
		return fmt.Errorf("levels and dot_levels must be at least 2")
	case len(a.DotHistogram) != a.DotLevels:
		return fmt.Errorf("dot_histogram has %d bins, want dot_levels %d", len(a.DotHistogram), a.DotLevels)
	}
	for i := 0; i < k; i++ {
		if len(a.PCAComponents[i]) != d {
			return fmt.Errorf("pca_components[%d] has %d values, want %d", i, len(a.PCAComponents[i]), d)
		}
	}
	return nil
}

// components returns the present components by role name.
func (m *Manifest) components() map[string]*Component {
	out := map[string]*Component{}
	c := &m.Components
	for name, comp := range map[string]*Component{"clip_text": c.CLIPText, "clip_image": c.CLIPImage, "prior": c.Prior, "ar_prior": c.ARPrior, "decoder": c.Decoder} {
		if comp != nil {
			out[name] = comp
		}
	}
	for i := range c.Upsamplers {
		out[fmt.Sprintf("upsamplers[%d]", i)] = &c.Upsamplers[i]
	}
	return out
}

// FileList returns every file the manifest names with its expected digest, sorted by name.
// A file named without a digest anywhere has an empty SHA256.
func (m *Manifest) FileList() []BundleFile {
	byName := map[string]BundleFile{}
	add := func(role, name, sum string) {
		if name == "" {
			return
		}
		f := byName[name]
		if f.Name == "" {
			f = BundleFile{Role: role, Name: name}
		}
		if f.SHA256 == "" {
			f.SHA256 = strings.ToLower(sum)
		}
		byName[name] = f
	}
	for role, c := range m.components() {
		add(role, c.File, c.SHA256)
	}
	for name, sum := range m.Files {
		add("files", name, sum)
	}
	add("tokenizer.merges", m.Tokenizer.Merges, m.Files[m.Tokenizer.Merges])
	add("tokenizer.vocab", m.Tokenizer.Vocab, m.Files[m.Tokenizer.Vocab])
	add("model_card", m.ModelCard, m.Files[m.ModelCard])
	out := make([]BundleFile, 0, len(byName))
	for _, f := range byName {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FileStatus is the verification result of one file.
type FileStatus struct {
	Name    string `json:"file"`
	Role    string `json:"role"`
	SHA256  string `json:"sha256"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// CheckFiles computes the SHA-256 of every file the manifest names in fsys and compares it with
// the manifest: a file that is missing, unreadable, outside the bundle, without a digest or with
// another digest is not OK.
func (m *Manifest) CheckFiles(fsys fs.FS) []FileStatus {
	var out []FileStatus
	for _, f := range m.FileList() {
		st := FileStatus{Name: f.Name, Role: f.Role, SHA256: f.SHA256}
		switch {
		case !fs.ValidPath(f.Name) || path.Clean(f.Name) != f.Name:
			st.Problem = "path is not a plain relative path inside the bundle"
		case f.SHA256 == "":
			st.Problem = "no sha256 in the manifest"
		default:
			got, err := fileSHA256(fsys, f.Name)
			switch {
			case err != nil:
				st.Problem = err.Error()
			case got != f.SHA256:
				st.Problem = fmt.Sprintf("sha256 %s does not match the manifest's %s", got, f.SHA256)
			default:
				st.OK = true
			}
		}
		out = append(out, st)
	}
	return out
}

// Verify checks the SHA-256 of every file the manifest names; the error is a *VerifyError naming
// every file that failed.
func (b *Bundle) Verify() error {
	label := b.Dir
	if label == "" {
		label = b.Manifest.Name
	}
	var problems []FileProblem
	for _, st := range b.Manifest.CheckFiles(b.FS) {
		if !st.OK {
			problems = append(problems, FileProblem{st.Name, st.Problem})
		}
	}
	if len(problems) > 0 {
		return &VerifyError{Bundle: label, Problems: problems}
	}
	return nil
}

func fileSHA256(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("cannot open: %w", pe.Err)
		}
		return "", fmt.Errorf("cannot open: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadFile reads a file of the bundle.
func (b *Bundle) ReadFile(name string) ([]byte, error) {
	data, err := fs.ReadFile(b.FS, name)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Manifest.Name, err)
	}
	return data, nil
}
